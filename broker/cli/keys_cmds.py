"""``nbx keys ...`` and ``nbx directory ...``.

Private keys are read with :mod:`broker.keys.files` (mode 0600 enforced, passphrase from
``NBX_KEY_PASSPHRASE``). Every directory change verifies the current file against the anchor, makes
the next serial and writes the file atomically.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.cli import rotate_cmds
from broker.cli.params import bureau_param, write_atomic
from broker.errors import KeyDirectoryError
from broker.ids import is_bureau_id
from broker.keys import BureauKeys, Directory, DirectoryBody, epochs, files, sign_directory
from broker.keys import directory_edit as edit
from broker.keys.hybrid import HybridEncryptionKey
from broker.keys.rules import (
    NOTICE_TYPES,
    REVIEWABLE_KINDS,
    SUPERVISION_LEVELS,
    NetworkRules,
    SupervisionLevel,
)
from broker.transport import KafkaSettings
from broker.vocab import Role

if TYPE_CHECKING:
    from broker.node.config import NodeConfig

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``12h``, ``7d`` or ``0``."""
    if text == "0":
        return timedelta(0)
    m = _DURATION.match(text)
    if m is None:
        msg = f"bad duration {text!r}: use e.g. 7d, 12h, 30m or 0"
        raise click.BadParameter(msg)
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse_time(text: str) -> datetime:
    """``now`` or an ISO 8601 time with a UTC offset (``2025-03-01T12:00:00Z``)."""
    if text == "now":
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        msg = f"bad time {text!r}: use ISO 8601 with an offset, e.g. 2025-03-01T12:00:00Z, or now"
        raise click.BadParameter(msg) from None
    if at.tzinfo is None:
        msg = f"time {text!r} has no UTC offset (add Z or +01:00)"
        raise click.BadParameter(msg)
    return at


def _optional_bureau(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else bureau_param(ctx, param, value)


FILE = click.option(
    "--file",
    "directory_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The signed directory file to update.",
)
ANCHOR_KEY = click.option(
    "--anchor-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The trust anchor's private key (passphrase from NBX_KEY_PASSPHRASE).",
)
ANCHOR_PUB = click.option(
    "--anchor",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("keys/trust-anchor.pub"),
    show_default=True,
    help="The pinned trust anchor public key.",
)


@click.group("keys")
def keys() -> None:
    """Create key files (private keys are written with mode 0600)."""


@keys.command("init-anchor")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def init_anchor(folder: Path) -> None:
    """Create the trust anchor key pair: FOLDER/trust-anchor.key (0600) and .pub."""
    files.init_anchor(folder, files.passphrase_from_env())
    click.echo(f"wrote {folder / files.ANCHOR_PRIVATE} (private, mode 0600)")
    click.echo(f"wrote {folder / files.ANCHOR_PUBLIC} (pin this in every node)")


@keys.command("new-bureau")
@click.argument("bureau", callback=bureau_param)
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--pq",
    is_flag=True,
    help="Post-quantum: an ML-KEM-768+X25519 hybrid encryption key (envelope suite 2, "
    "BUREAU.hybrid.key) instead of an X25519 one.",
)
def new_bureau(bureau: str, folder: Path, pq: bool) -> None:
    """Create BUREAU's signing and encryption keys and its public key document in --dir."""
    generated = BureauKeys.generate(bureau, pq=pq)
    files.write_bureau_keys(folder, generated, files.passphrase_from_env())
    _, _, public = files.bureau_paths(folder, bureau)
    click.echo(f"signing key    {generated.signing_key_id}")
    if generated.hybrid_key is not None:
        click.echo(f"encryption key {generated.hybrid_key.key_id} (MLKEM768-X25519)")
    else:
        click.echo(f"encryption key {generated.encryption_key_id}")
    click.echo(f"wrote private keys (mode 0600) and {public}")


@keys.command("add-pq")
@click.argument("bureau", callback=bureau_param)
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), required=True)
def add_pq(bureau: str, folder: Path) -> None:
    """Add a post-quantum ML-KEM-768+X25519 key to BUREAU's existing keys in --dir.

    Writes BUREAU.hybrid.key (0600) and BUREAU.hybrid.public.json, the input to `nbx directory
    add-key`; the signing and X25519 keys stay (docs/security/post-quantum.md).
    """
    signing, _, _ = files.bureau_paths(folder, bureau)
    if not signing.exists():
        msg = f"{signing}: not found; add-pq adds to an existing bureau (see new-bureau --pq)"
        raise KeyDirectoryError(msg)
    hybrid = HybridEncryptionKey.generate()
    public = folder / f"{bureau}.hybrid.public.json"
    if public.exists():
        msg = f"{public}: already exists; refusing to overwrite a key file"
        raise KeyDirectoryError(msg)
    files.write_hybrid_key(files.hybrid_path(folder, bureau), hybrid, files.passphrase_from_env())
    document = {"bureau": bureau, "keys": [files.hybrid_public_entry(hybrid)]}
    public.write_text(json.dumps(document, indent=2) + "\n")
    click.echo(f"encryption key {hybrid.key_id} (MLKEM768-X25519)")
    click.echo(f"wrote {files.hybrid_path(folder, bureau)} (mode 0600) and {public}")


@click.group("directory")
def directory() -> None:
    """Build, sign, inspect and verify the bureau directory."""


def _current(
    path: Path, anchor_key_path: Path, *, create: bool = False
) -> tuple[DirectoryBody, ed25519.Ed25519PrivateKey]:
    """Load the anchor key and the verified current directory (or a new one if ``create``)."""
    anchor = files.load_signing_key(anchor_key_path, files.passphrase_from_env())
    if not path.exists():
        if create:
            return edit.empty_directory(anchor.public_key(), datetime.now(UTC)), anchor
        msg = f"{path}: directory file not found"
        raise KeyDirectoryError(msg)
    return Directory.load(path, anchor.public_key()).body, anchor


def _save(
    path: Path, body: DirectoryBody, anchor: ed25519.Ed25519PrivateKey, *, new: bool = False
) -> None:
    """Sign and write ``body``, saying which serial it is: a new directory file starts at serial
    1, and every later change signs the next one (``serial 3 (was 2)``)."""
    if new:
        body = body.model_copy(update={"serial": 1})
        what = "1 (a new directory; each change signs the next serial)"
    else:
        what = f"{body.serial} (was {body.serial - 1})"
    write_atomic(path, sign_directory(body, anchor))
    click.echo(f"wrote {path} serial {what}")


PUBLIC = click.option(
    "--keys",
    "public",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The bureau's <CC>.public.json from `nbx keys new-bureau`.",
)


def _public_document(path: Path, bureau: str) -> edit.PublicDocument:
    doc = edit.read_public_document(path)
    if doc.bureau != bureau:
        msg = f"{path}: holds keys of {doc.bureau}, not {bureau}"
        raise KeyDirectoryError(msg)
    return doc


def _items(values: tuple[str, ...]) -> list[str]:
    """The items of options given as repeated values and/or comma lists (``a,b --x c``)."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def parse_roles(values: tuple[str, ...]) -> tuple[str, ...]:
    """``member`` plus the roles named in ``values`` (repeated and/or comma lists), in the order
    of :class:`Role`; :class:`KeyDirectoryError` for an unknown role."""
    named = set(_items(values))
    for role in sorted(named):
        if role not in set(Role):
            msg = f"unknown role {role!r}: use reviewer or oversight (every bureau is a member)"
            raise KeyDirectoryError(msg)
    return tuple(r.value for r in Role if r == Role.MEMBER or r in named)


def _choices(text: str, allowed: tuple[str, ...], what: str, option: str) -> list[str]:
    """A comma list of values from ``allowed`` (``none``: the empty list)."""
    if text.strip() == "none":
        return []
    items = _items((text,))
    for item in items:
        if item not in allowed:
            msg = f"unknown {what} {item!r} in {option}: use {', '.join(allowed)} or none"
            raise KeyDirectoryError(msg)
    if not items:
        msg = f"{option} is empty: give {what}s separated by commas, or none"
        raise KeyDirectoryError(msg)
    return items


def parse_supervision(values: tuple[str, ...]) -> dict[str, SupervisionLevel]:
    """``XX=pre`` / ``XX=post`` pairs (repeated and/or comma lists) as bureau -> level."""
    levels: dict[str, SupervisionLevel] = {}
    for item in _items(values):
        bureau, sep, level = item.partition("=")
        if not sep or not is_bureau_id(bureau):
            msg = f"bad --supervise {item!r}: use BUREAU=pre or BUREAU=post, e.g. DE=pre"
            raise KeyDirectoryError(msg)
        if level not in SUPERVISION_LEVELS:
            msg = f"bad supervision level {level!r} for {bureau}: use post or pre"
            raise KeyDirectoryError(msg)
        levels[bureau] = "pre" if level == "pre" else "post"
    return levels


def _bureau_list(values: tuple[str, ...]) -> list[str]:
    items = _items(values)
    for item in items:
        if not is_bureau_id(item):
            msg = f"{item!r} is not a bureau id (two upper-case letters, e.g. FR or XI)"
            raise KeyDirectoryError(msg)
    return items


@directory.command("add")
@click.argument("bureau", callback=_optional_bureau, required=False)
@click.option(
    "--keys",
    "public",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The bureau's <CC>.public.json from `nbx keys new-bureau` (not with --request).",
)
@click.option("--name", default=None, help="Display name of the bureau (not with --request).")
@click.option(
    "--request",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A join request from `nbx node join` (CC.join.json): its proof is verified, and its "
    "bureau, name and keys are added.",
)
@click.option(
    "--fingerprint",
    default=None,
    help="With --request: the fingerprint the requester read out to you; a request whose "
    "fingerprint differs is refused and nothing is written.",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    help="A network body's role: reviewer or oversight (repeat or comma list; organisation "
    "ids XA..XZ only). Every bureau is a member.",
)
@click.option("--not-after", default=None, help="End of the keys' validity (ISO 8601).")
@FILE
@ANCHOR_KEY
def add(
    bureau: str | None,
    public: Path | None,
    name: str | None,
    roles: tuple[str, ...],
    not_after: str | None,
    directory_file: Path,
    anchor_key: Path,
    request: Path | None = None,
    fingerprint: str | None = None,
) -> None:
    """Add BUREAU with its keys (creates the directory file, serial 1, if it does not exist).

    With --request CC.join.json (from `nbx node join`), BUREAU, --keys and --name come from the
    request, whose proof of possession is verified first; its bureau, name, contact and
    fingerprint are printed (compare the fingerprint with the requester's, out of band). The
    contact is not put in the directory.
    """
    if request is not None:
        given = [o for o, v in (("BUREAU", bureau), ("--keys", public), ("--name", name)) if v]
        _add_request(request, given, roles, not_after, directory_file, anchor_key, fingerprint)
        return
    if fingerprint is not None:
        msg = "--fingerprint: only with --request"
        raise click.UsageError(msg)
    missing = [o for o, v in (("BUREAU", bureau), ("--keys", public), ("--name", name)) if not v]
    if missing:
        msg = f"give {', '.join(missing)}, or --request CC.join.json"
        raise click.UsageError(msg)
    if bureau is None or public is None or name is None:  # pragma: no cover - checked above
        return
    created = not directory_file.exists()
    body, anchor = _current(directory_file, anchor_key, create=True)
    doc = _public_document(public, bureau)
    until = parse_time(not_after) if not_after else None
    now = datetime.now(UTC)
    held = parse_roles(roles)
    new = edit.add_bureau(body, doc, name=name, now=now, roles=held, not_after=until)
    _save(directory_file, new, anchor, new=created)


def _add_request(
    request: Path,
    given: list[str],
    roles: tuple[str, ...],
    not_after: str | None,
    directory_file: Path,
    anchor_key: Path,
    fingerprint: str | None = None,
) -> None:
    """``directory add --request``: verify the request (and its ``fingerprint`` if given),
    refuse a bureau id already listed, print what is added, sign the next serial. Nothing is
    written when anything is refused."""
    from broker.keys.join import read_join_request, same_fingerprint

    joining = read_join_request(request)
    if fingerprint is not None and not same_fingerprint(fingerprint, joining.fingerprint):
        msg = (
            f"{request}: fingerprint {joining.fingerprint} is not the one given "
            f"({fingerprint.strip()}): do not add this request"
        )
        raise KeyDirectoryError(msg)
    if given:
        msg = f"--request: not with {', '.join(given)} (the request names them)"
        raise click.UsageError(msg)
    held = parse_roles(roles)
    until = parse_time(not_after) if not_after else None
    created = not directory_file.exists()
    body, anchor = _current(directory_file, anchor_key, create=True)
    if any(b.id == joining.bureau for b in body.bureaus):
        msg = f"{request}: bureau {joining.bureau} is already in directory serial {body.serial}"
        raise KeyDirectoryError(msg)
    request_body = joining.body
    click.echo(f"join request {request}: proof verified with signing key {joining.signing_kid}")
    click.echo(f"bureau   {joining.bureau}")
    click.echo(f"name     {request_body.name}")
    click.echo(f"contact  {request_body.contact}  (for you: not put in the directory)")
    click.echo(f"created  {_when(request_body.created_at)}")
    click.echo(f"fingerprint {joining.fingerprint}  (compare with the requester's, out of band)")
    new = edit.add_bureau(
        body,
        joining.public_document(),
        name=request_body.name,
        now=datetime.now(UTC),
        roles=held,
        not_after=until,
    )
    _save(directory_file, new, anchor, new=created)


@directory.command("roles")
@click.argument("bureau", callback=bureau_param)
@click.option(
    "--role",
    "roles",
    multiple=True,
    help="reviewer or oversight (repeat or comma list; none given: member only).",
)
@FILE
@ANCHOR_KEY
def set_roles(bureau: str, roles: tuple[str, ...], directory_file: Path, anchor_key: Path) -> None:
    """Set the roles of BUREAU, already listed: member plus the --role given (the others go)."""
    held = parse_roles(roles)
    body, anchor = _current(directory_file, anchor_key)
    new = edit.set_roles(body, bureau, held, now=datetime.now(UTC))
    click.echo(f"{bureau}  roles={','.join(held)}")
    _save(directory_file, new, anchor)


@directory.command("rules")
@click.option(
    "--review-types",
    default=None,
    help=f"Notice types that need review, comma list or none (of {', '.join(NOTICE_TYPES)}).",
)
@click.option(
    "--review-kinds",
    default=None,
    help=f"Message kinds that need review, comma list or none (of {', '.join(REVIEWABLE_KINDS)}).",
)
@click.option(
    "--supervise",
    multiple=True,
    help="BUREAU=pre (heightened: held until a reviewer approves) or BUREAU=post (repeatable).",
)
@click.option(
    "--unsupervise", multiple=True, help="Return BUREAU to the default, post (repeatable)."
)
@FILE
@ANCHOR_KEY
def rules(
    review_types: str | None,
    review_kinds: str | None,
    supervise: tuple[str, ...],
    unsupervise: tuple[str, ...],
    directory_file: Path,
    anchor_key: Path,
) -> None:
    """Change the signed network rules: what needs review, who is supervised.

    Signs the next serial; every bureau, key and rule not named stays as it was.
    """
    types = (
        _choices(review_types, NOTICE_TYPES, "notice type", "--review-types")
        if review_types is not None
        else None
    )
    kinds = (
        _choices(review_kinds, REVIEWABLE_KINDS, "message kind", "--review-kinds")
        if review_kinds is not None
        else None
    )
    levels = parse_supervision(supervise)
    released = _bureau_list(unsupervise)
    if types is None and kinds is None and not levels and not released:
        msg = "nothing to change: give --review-types, --review-kinds, --supervise or --unsupervise"
        raise KeyDirectoryError(msg)
    body, anchor = _current(directory_file, anchor_key)
    new = edit.set_rules(
        body,
        now=datetime.now(UTC),
        review_kinds=kinds,
        review_types=types,
        supervise=levels,
        unsupervise=released,
    )
    for line in rules_lines(new.rules, new.reviewers()):
        click.echo(line)
    _save(directory_file, new, anchor)


@directory.command("rotate")
@click.argument("bureau", callback=bureau_param)
@PUBLIC
@click.option(
    "--overlap",
    default="7d",
    show_default=True,
    help="How long the current keys stay valid next to the new ones (e.g. 7d, 12h, 0).",
)
@FILE
@ANCHOR_KEY
def rotate(bureau: str, public: Path, overlap: str, directory_file: Path, anchor_key: Path) -> None:
    """Give BUREAU new keys; its current keys stay valid during --overlap."""
    body, anchor = _current(directory_file, anchor_key)
    doc = _public_document(public, bureau)
    now = datetime.now(UTC)
    new = edit.rotate_keys(body, doc, now=now, overlap=parse_duration(overlap))
    _save(directory_file, new, anchor)


@directory.command("add-key")
@click.argument("bureau", callback=bureau_param)
@PUBLIC
@FILE
@ANCHOR_KEY
def add_key(bureau: str, public: Path, directory_file: Path, anchor_key: Path) -> None:
    """Add encryption keys (from `nbx keys add-pq`) to BUREAU from now; its other keys stay."""
    body, anchor = _current(directory_file, anchor_key)
    doc = _public_document(public, bureau)
    _save(directory_file, edit.add_encryption_keys(body, doc, now=datetime.now(UTC)), anchor)


@directory.command("revoke")
@click.argument("bureau", callback=bureau_param)
@click.option(
    "--kid", required=True, help="Key id to revoke (an option: key ids may start with -)."
)
@click.option("--at", "at", default="now", show_default=True, help="Revocation time (ISO 8601).")
@click.option("--reason", required=True, help="Why, e.g. key-compromise or superseded.")
@FILE
@ANCHOR_KEY
def revoke(
    bureau: str, kid: str, at: str, reason: str, directory_file: Path, anchor_key: Path
) -> None:
    """Revoke key --kid of BUREAU from --at on (messages signed or received later are rejected)."""
    body, anchor = _current(directory_file, anchor_key)
    now = datetime.now(UTC)
    new = edit.revoke_key(body, bureau, kid, at=parse_time(at), reason=reason, now=now)
    _save(directory_file, new, anchor)


@directory.command("reissue")
@FILE
@ANCHOR_KEY
def reissue(directory_file: Path, anchor_key: Path) -> None:
    """Sign the directory again, unchanged, with the next serial and a fresh issue time.

    Every change (add, rotate, revoke) re-issues too; run this periodically (e.g. weekly, from
    cron) so that the directory never gets older than the nodes' trust.max_directory_age_days.
    """
    body, anchor = _current(directory_file, anchor_key)
    _save(directory_file, edit.reissue(body, now=datetime.now(UTC)), anchor)


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def rules_lines(rules: NetworkRules, reviewers: list[str]) -> list[str]:
    """The network rules as ``nbx directory show`` prints them (two lines)."""
    kinds = ",".join(rules.review_kinds) or "none"
    types = ",".join(rules.review_types) or "none"
    if reviewers:
        who = f"reviewers={','.join(reviewers)}"
    else:
        who = "reviewers=none (no reviewer listed: nothing needs review)"
    levels = ",".join(f"{b}={level}" for b, level in sorted(rules.supervision.items()))
    return [
        f"rules: review kinds={kinds} types={types} {who}",
        f"rules: supervision {levels or 'none'} (every other sender post)",
    ]


@directory.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@ANCHOR_PUB
def show(path: Path, anchor: Path) -> None:
    """Verify and print the directory in PATH: rules, bureaus with roles, keys, windows and
    status."""
    loaded = Directory.load(path, files.load_anchor_public_key(anchor))
    body = loaded.body
    click.echo(f"directory serial {body.serial} issued {_when(body.issued_at)}")
    if loaded.links:  # signed by a successor of the pinned anchor (anchor rotation)
        via = " -> ".join([loaded.links[0].from_kid, *(x.to_kid for x in loaded.links)])
        click.echo(f"anchor {body.anchor_kid} (signature verified along the chain {via})")
    else:
        click.echo(f"anchor {body.anchor_kid} (signature verified with {anchor})")
    for link in body.anchor_chain:
        click.echo(f"anchor chain: {link.from_kid} -> {link.to_kid} at {_when(link.at)}")
    if body.successor is not None:
        click.echo(f"successor announced: {body.successor.to_kid} at {_when(body.successor.at)}")
    for line in rules_lines(body.rules, body.reviewers()):
        click.echo(line)
    for bureau in body.bureaus:
        click.echo(f"{bureau.id}  {bureau.name}  roles={','.join(bureau.roles)}")
        for k in bureau.keys:
            status: str = k.status
            if k.revocation is not None:
                status += f" at {_when(k.revocation.at)} ({k.revocation.reason})"
            click.echo(
                f"  {k.use:<7} {k.alg:<15} {k.kid}  "
                f"{_when(k.not_before)} .. {_when(k.not_after)}  {status}"
            )


@directory.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@ANCHOR_PUB
@click.option("--min-serial", type=click.IntRange(0), default=0, help="Reject older serials.")
def verify(path: Path, anchor: Path, min_serial: int) -> None:
    """Check PATH's anchor signature and serial; exit 1 with the reason if it fails."""
    loaded = Directory.load(path, files.load_anchor_public_key(anchor), min_serial=min_serial)
    click.echo(f"ok: {path} serial {loaded.serial}, {len(loaded.bureau_ids())} bureaus")


BOOTSTRAP = click.option(
    "--bootstrap", default=None, help="Kafka bootstrap servers (host:port), plaintext."
)
KAFKA_CONFIG = click.option(
    "--config",
    "node_config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Connect with a node.toml's [kafka] settings (TLS, SASL) instead of --bootstrap.",
)


def kafka_settings(bootstrap: str | None, node_config: Path | None = None) -> KafkaSettings:
    """The Kafka settings for a directory command: a node configuration's (with TLS and SASL), or
    a plaintext connection to ``bootstrap``."""
    if node_config is not None:
        from broker.node.config import NodeConfig

        settings = NodeConfig.load(node_config).kafka_settings()
        return settings if bootstrap is None else replace(settings, bootstrap=bootstrap)
    if bootstrap is None:
        msg = "give --bootstrap HOST:PORT or --config node.toml"
        raise click.UsageError(msg)
    # one record at a time: no idempotent producer needed (and tansu has none)
    return KafkaSettings(bootstrap=bootstrap, client_id="nbx-directory", enable_idempotence=False)


@directory.command("publish")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@ANCHOR_PUB
@BOOTSTRAP
@KAFKA_CONFIG
def publish(
    path: Path, anchor: Path, bootstrap: str | None, node_config: Path | None = None
) -> None:
    """Verify PATH and publish it to the compacted topic nbx.directory."""
    from broker.keys.directory_topic import publish_directory

    settings = kafka_settings(bootstrap, node_config)
    loaded = Directory.load(path, files.load_anchor_public_key(anchor))
    asyncio.run(publish_directory(settings, loaded.signed))
    click.echo(f"published serial {loaded.serial} to nbx.directory")


@directory.command("fetch")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@ANCHOR_PUB
@BOOTSTRAP
@KAFKA_CONFIG
@click.option("--min-serial", type=click.IntRange(0), default=0, help="Reject older serials.")
def fetch(
    path: Path, anchor: Path, bootstrap: str | None, node_config: Path | None, min_serial: int
) -> None:
    """Read the newest verified directory from nbx.directory and write it to PATH."""
    from broker.keys.directory_topic import fetch_directory

    settings = kafka_settings(bootstrap, node_config)
    pinned = files.load_anchor_public_key(anchor)
    loaded = asyncio.run(fetch_directory(settings, pinned, min_serial))
    write_atomic(path, loaded.signed)
    click.echo(f"wrote {path} serial {loaded.serial}")


# --- key epochs: rotation schedule and crypto-shredding (issue 18, point 5) ---------------------

NODE_CONFIG = click.option(
    "--config",
    "node_config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("node.toml"),
    show_default=True,
    help="The node's configuration (keys folder, [shredding], directory).",
)


def _node_directory(config: NodeConfig) -> Directory:
    """The node's verified directory: its file, or the newest record of ``nbx.directory``."""
    anchor = files.load_anchor_public_key(config.trust.anchor)
    if config.trust.directory != "topic":
        return Directory.load(Path(config.trust.directory), anchor)
    from broker.keys.directory_topic import fetch_directory

    return asyncio.run(fetch_directory(config.kafka_settings(), anchor, 0))


def _epoch_view(
    config: NodeConfig, now: datetime
) -> tuple[list[epochs.EpochStatus], datetime | None]:
    from broker.node.keycare import KeyCare, own_records

    care = KeyCare.from_config(config)
    keys = epochs.load_keys(config.keys.dir, config.bureau, care.passphrase())
    records = own_records(_node_directory(config), config.bureau)
    rows = epochs.epoch_status(
        keys,
        epochs.read_epochs(config.keys.dir, config.bureau),
        records,
        now=now,
        window=care.window,
    )
    return rows, epochs.rotation_due(rows, care.rotate_every)


def _day(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


@keys.command("status")
@NODE_CONFIG
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of the table.")
@click.option("--at", "at", default="now", show_default=True, help="Show the state at this time.")
def status(node_config: Path, as_json: bool, at: str) -> None:
    """The node's encryption key epochs: key id, suite, valid from, retired, when each old key
    is (or was) destroyed, and when the next rotation is due."""
    from broker.node.config import NodeConfig
    from broker.node.keycare import KeyCare

    config = NodeConfig.load(node_config)
    now = parse_time(at)
    rows, due = _epoch_view(config, now)
    care = KeyCare.from_config(config)
    if as_json:
        doc = {
            "bureau": config.bureau,
            "at": now.isoformat(),
            "rotate_every_days": config.shredding.rotate_every_days,
            "rotation_due": None if due is None else due.isoformat(),
            "rotation_overdue": due is not None and now >= due,
            "destroy_after_retired_days": care.window / timedelta(days=1),
            "epochs": [r.to_json() for r in rows],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    window_days = care.window / timedelta(days=1)
    click.echo(
        f"{config.bureau}: an old key is destroyed {window_days:g} days after it was retired "
        f"(3 x (topic retention {config.shredding.topic_retention_days:g} days + segment) + "
        f"grace {config.shredding.grace_days:g} days)"
    )
    if due is None:
        click.echo("rotation: the directory lists none of this node's current keys")
    else:
        late = " (OVERDUE: nbx keys next-epoch)" if now >= due else ""
        every = config.shredding.rotate_every_days
        click.echo(f"rotation: every {every:g} days, next due {_day(due)}{late}")
    header = ("KEY ID", "SUITE", "VALID FROM", "RETIRED", "DESTROY AFTER", "STATE")
    table = [header] + [
        (
            r.kid,
            r.alg,
            _day(r.created),
            _day(r.retired),
            _day(r.destroy_after),
            f"destroyed {_day(r.destroyed)}" if r.destroyed is not None else r.state,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@keys.command("shred")
@NODE_CONFIG
def shred(node_config: Path) -> None:
    """Destroy now every old encryption private key whose window has passed (the daemon does
    this itself at each housekeeping round); prints the key ids destroyed."""
    from broker.logging import get_logger
    from broker.node.config import NodeConfig
    from broker.node.keycare import KeyCare, own_records

    config = NodeConfig.load(node_config)
    care = KeyCare.from_config(config)
    keys = epochs.load_keys(config.keys.dir, config.bureau, care.passphrase())
    records = own_records(_node_directory(config), config.bureau)
    now = datetime.now(UTC)
    destroyed = epochs.shred(config.keys.dir, keys, records, now=now, window=care.window)
    for kid in destroyed:
        get_logger().info("keys.destroyed", bureau=config.bureau, key_id=kid)
        click.echo(f"destroyed {kid}")
    if not destroyed:
        rows = epochs.epoch_status(
            keys,
            epochs.read_epochs(config.keys.dir, config.bureau),
            records,
            now=now,
            window=care.window,
        )
        waiting = [r for r in rows if r.state == "retired" and r.destroy_after is not None]
        if waiting:
            first = min(waiting, key=lambda r: r.destroy_after or now)
            click.echo(f"nothing to destroy yet: {first.kid} after {_day(first.destroy_after)}")
        else:
            click.echo("nothing to destroy")


@keys.command("next-epoch")
@click.argument("bureau", callback=bureau_param)
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), required=True)
def next_epoch(bureau: str, folder: Path) -> None:
    """Start BUREAU's next encryption key epoch: a new key of the same suite in its key file, the
    current one kept in BUREAU.epochs.json (0600) until its window has passed, and
    BUREAU.next.public.json for the anchor (nbx directory add-key)."""
    step = epochs.next_epoch(
        folder, bureau, now=datetime.now(UTC), passphrase=files.passphrase_from_env()
    )
    click.echo(f"archived encryption key {step.old_kid} in {epochs.epochs_path(folder, bureau)}")
    click.echo(f"new encryption key {step.new_kid} ({step.alg})")
    click.echo(f"wrote {step.public}")
    click.echo(
        "next: restart the daemon (or wait for its next housekeeping round), then the anchor "
        f"runs: nbx directory add-key {bureau} --keys {step.public.name} --file ... --anchor-key "
        "... and publishes the directory"
    )


def register(group: click.Group) -> None:
    """Add this module's command groups to ``group``."""
    from broker.cli.anchor_cmds import rotate_anchor  # nbx keys rotate-anchor

    keys.add_command(rotate_anchor)
    group.add_command(keys)
    group.add_command(directory)
    keys.add_command(rotate_cmds.rotate)  # nbx keys rotate (signing-key rotation, issue 21)
