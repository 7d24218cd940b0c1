"""``nbx deploy certs``: a network CA and one TLS client certificate per bureau of the signed
directory (:mod:`broker.deploy.certs`), for test networks and small pilots. Added to the
``nbx deploy`` group by :mod:`broker.cli.deploy_cmds`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from broker.deploy.certs import CA_KEY_FILE, CERT_DAYS, network_certs
from broker.keys import files
from broker.keys.directory import Directory


@click.command("certs")
@click.option(
    "--directory",
    "directory",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The signed directory: one client certificate per bureau listed in it.",
)
@click.option(
    "--anchor",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The trust anchor public key the directory must verify against.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The folder to write into (created; no file in it is ever overwritten).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=CERT_DAYS,
    show_default=True,
    help="Validity of the client certificates.",
)
def certs(directory: Path, anchor: Path, out: Path, days: int) -> None:
    """Create a network CA and a client certificate (CN nbx-<CC>) for every bureau of the signed
    directory and for the anchor operator (nbx-anchor), each file 0600. For test networks and
    pilots: an organisation's own PKI can issue the same certificates instead
    (docs/security/transport.md)."""
    loaded = Directory.load(directory, files.load_anchor_public_key(anchor))
    bureaus = [b.id for b in loaded.body.bureaus]
    written = network_certs(bureaus, out, now=datetime.now(UTC), days=days)
    for path in written:
        click.echo(str(path))
    click.echo(
        f"wrote a network CA and {len(bureaus) + 1} client certificates to {out}; "
        f"keep {out / CA_KEY_FILE} offline"
    )
