"""``nbx subject lookup``: which notices a node holds about a person, for answering a subject
access request (docs/safeguards.md, "Subject access")."""

from __future__ import annotations

import json
from pathlib import Path

import click

from broker.cli.node_cmds import CONFIG, JSON_OUT, _config
from broker.errors import NbxError


@click.group()
def subject() -> None:
    """Answer a data subject's access request."""


@subject.command("lookup")
@CONFIG
@click.option("--family-name", required=True, help="The family name asked about (aliases count).")
@click.option(
    "--date-of-birth",
    default=None,
    help="YYYY, YYYY-MM or YYYY-MM-DD; a partial date matches every day it could be.",
)
@click.option(
    "--purpose",
    required=True,
    help="Why (e.g. the access request's reference): recorded in the audit log with the operator.",
)
@JSON_OUT
def lookup(
    config_path: Path,
    family_name: str,
    date_of_birth: str | None,
    purpose: str,
    as_json: bool,
) -> None:
    """List the ids and states of the stored notices whose person may be the one asked about
    (names compare without case, accents and separators; aliases count). Only ids and states
    are printed; the lookup is a consultation in the audit log (operator and --purpose)."""
    import re

    from broker.sinks import open_sink
    from broker.sinks.audit import Access, default_operator

    if not family_name.strip():
        msg = "--family-name: must not be empty"
        raise NbxError(msg)
    if date_of_birth is not None and not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", date_of_birth):
        msg = f"--date-of-birth {date_of_birth!r}: expected YYYY, YYYY-MM or YYYY-MM-DD"
        raise NbxError(msg)
    config = _config(config_path)
    access = Access(default_operator(config.audit.operator), purpose)
    sink = open_sink(config.sink.url, password_env=config.sink.password_env)
    try:
        hits = sink.subject_lookup(family_name, date_of_birth, access)
    finally:
        sink.close()
    if as_json:
        click.echo(json.dumps(hits, indent=2))
        return
    if not hits:
        click.echo("no stored notice matches (the lookup was recorded in the audit log)")
        return
    for h in hits:
        reason = f" ({h['state_reason']})" if h["state_reason"] else ""
        click.echo(
            f"{h['notice_id']:24} {h['notice_type']:9} from {h['sender']} "
            f"v{h['version']} {h['handling'] or '-'} {h['state']}{reason}  stored {h['updated_at']}"
        )


def register(group: click.Group) -> None:
    """Add ``nbx subject`` to ``group``."""
    group.add_command(subject)
