"""``nbx keys rotate``: a bureau's next signing key and encryption epoch, for a running node
(docs/security/key-rotation.md; :mod:`broker.keys.signing`).

Registered on the ``keys`` group by :mod:`broker.cli.keys_cmds`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from broker.cli.params import bureau_param
from broker.keys import files, signing


@click.command("rotate")
@click.argument("bureau", callback=bureau_param)
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="The bureau's key folder (the node's [keys] dir).",
)
def rotate(bureau: str, folder: Path) -> None:
    """Rotate BUREAU's keys on a running node: a new signing key (BUREAU.signing.next.key, 0600)
    and the next encryption epoch of the same suite, and BUREAU.next.public.json with both for
    the anchor (nbx directory rotate). The node keeps signing with its current key until its
    directory lists the new one; nothing needs a restart."""
    step = signing.rotate(
        folder, bureau, now=datetime.now(UTC), passphrase=files.passphrase_from_env()
    )
    enc = step.encryption
    click.echo(f"new signing key {step.new_signing_kid} in {step.signing_path} (mode 0600)")
    click.echo(f"archived encryption key {enc.old_kid}")
    click.echo(f"new encryption key {enc.new_kid} ({enc.alg})")
    click.echo(f"wrote {step.public}")
    click.echo(
        f"next: the anchor runs: nbx directory rotate {bureau} --keys {step.public.name} "
        "--file ... --anchor-key ... and publishes the directory; the node signs with the new "
        f"key once its directory lists it ([keys] switch_after_s later); then the anchor revokes "
        f"the old signing key: nbx directory revoke {bureau} --kid {step.old_signing_kid} "
        "--reason superseded ... (the node then destroys it: key care, or nbx keys shred)"
    )
