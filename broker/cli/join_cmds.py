"""``nbx node join CC``: a new bureau's keys, node.toml and signed join request (issue 21).

The new node's folder ``DIR``::

    DIR/keys/CC.signing.key, CC.encryption.key (0600), CC.public.json
    DIR/trust-anchor.pub      the network's anchor (a copy of --anchor, obtained out of band)
    DIR/policies/*.toml       the policy folder (--policies, else the bundled examples)
    DIR/node.toml             reads the directory from nbx.directory (trust.directory = "topic")
    DIR/CC.join.json          the join request, for the anchor operator

The node started before the anchor lists the bureau waits (``node.waiting-for-listing``) and
consumes as soon as a directory it can verify lists it (docs/onboarding.md).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import click

from broker.cli.params import bureau_param
from broker.errors import KeyDirectoryError, NbxError


@click.command("join")
@click.argument("bureau", callback=bureau_param)
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The new node's folder (created; must not hold a node yet).",
)
@click.option("--bootstrap", required=True, help="The network's Kafka host:port.")
@click.option(
    "--anchor",
    type=click.Path(dir_okay=False, path_type=Path, exists=True),
    required=True,
    help="The network's trust anchor public key (trust-anchor.pub, obtained out of band).",
)
@click.option("--name", required=True, help="The bureau's display name, e.g. 'NCB Lisbon'.")
@click.option(
    "--contact",
    required=True,
    help="How the anchor operator reaches you to check the request (not put in the directory).",
)
@click.option(
    "--policies",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Policy folder to copy (default: the bundled example policies).",
)
@click.option("--pq", is_flag=True, help="A post-quantum ML-KEM-768+X25519 encryption key.")
@click.option(
    "--dev-broker",
    "dev_broker",
    type=click.Choice(["noida", "tansu"]),
    default=None,
    help="Configure the node for this embedded development broker (as `nbx node init`). "
    "Default: Apache Kafka.",
)
def join(
    bureau: str,
    folder: Path,
    bootstrap: str,
    anchor: Path,
    name: str,
    contact: str,
    policies: Path | None,
    pq: bool,
    dev_broker: str | None,
) -> None:
    """Create BUREAU's keys, a node.toml reading nbx.directory, and BUREAU.join.json (the keys,
    name and contact, signed with the new signing key) for the network's anchor operator."""
    from broker import devbroker
    from broker.examples import policies_dir
    from broker.keys import BureauKeys
    from broker.keys.files import (
        bureau_paths,
        hybrid_path,
        load_anchor_public_key,
        passphrase_from_env,
        write_bureau_keys,
    )
    from broker.keys.join import join_request_path, make_join_request, verify_join_request
    from broker.node.provision import NODE_TOML

    load_anchor_public_key(anchor)  # refuse a file that is not an Ed25519 public key first
    keys_dir = folder / "keys"
    request = join_request_path(folder, bureau)
    config = folder / "node.toml"
    pinned = folder / "trust-anchor.pub"
    for path in (*bureau_paths(keys_dir, bureau), hybrid_path(keys_dir, bureau)):
        if path.exists():
            msg = f"{path}: already exists; refusing to overwrite a key file"
            raise KeyDirectoryError(msg)
    for path in (config, request, pinned, folder / "policies"):
        if path.exists():
            msg = f"{path}: already exists; `nbx node join` writes a new node's folder"
            raise NbxError(msg)
    keys = BureauKeys.generate(bureau, pq=pq)
    data = make_join_request(keys, name=name, contact=contact, now=datetime.now(UTC))
    folder.mkdir(parents=True, exist_ok=True)
    write_bureau_keys(keys_dir, keys, passphrase_from_env())
    shutil.copyfile(anchor, pinned)
    shutil.copytree(policies or policies_dir(), folder / "policies")
    config.write_text(
        NODE_TOML.format(
            cc=bureau,
            anchor=pinned.name,
            directory="topic",
            bootstrap=bootstrap,
            idempotence=str(
                dev_broker is None or devbroker.IDEMPOTENT_PRODUCER[dev_broker]
            ).lower(),
            log_append_time=str(
                dev_broker is None or devbroker.STAMPS_LOG_APPEND_TIME[dev_broker]
            ).lower(),
            pace_empty_fetches=str(
                dev_broker is not None and devbroker.NEEDS_FETCH_PACING[dev_broker]
            ).lower(),
            session_timeout_ms=10_000,
            policies="policies",
            sink=f"sqlite:///{bureau}.sqlite",
        )
    )
    request.write_bytes(data)
    joining = verify_join_request(data, str(request))
    click.echo(f"wrote {keys_dir} (private keys mode 0600), {config} and {request}")
    click.echo(f"join request fingerprint {joining.fingerprint}")
    click.echo(
        "next: send the request to the network's anchor operator and read the fingerprint out "
        "to them (phone, in person); they run:"
    )
    click.echo(
        f'  nbx directory add --request {request.name} --fingerprint "{joining.fingerprint}" '
        "--file directory.json --anchor-key ..."
    )
    click.echo("  nbx directory publish directory.json --anchor ... --bootstrap ...")
    click.echo(
        f"start the daemon now: nbx consume --config {config}  (it waits until the directory "
        f"lists {bureau}, then consumes)"
    )


def register(group: click.Group) -> None:
    """Add ``join`` to ``group`` (the ``node`` group)."""
    group.add_command(join)
