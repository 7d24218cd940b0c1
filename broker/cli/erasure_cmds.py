"""``nbx erasure``: order recipients to erase a notice (optionally by ``--erase-by``), or send
every overdue purging message again to the recipients that have not confirmed it
(``--resend-overdue``; docs/safeguards.md, "Retention and proven erasure")."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from broker.cli.node_cmds import (
    CONFIG,
    JSON_OUT,
    _config,
    _exit_for,
    _order_recipients,
    _print_result,
)
from broker.errors import NbxError
from broker.vocab import SendStatus


def _erase_by(value: str | None) -> str | None:
    """``--erase-by`` as the ISO 8601 time the order carries (a time zone is required)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        msg = f"--erase-by: expected an ISO 8601 time with its zone (2031-01-01T00:00Z): {value!r}"
        raise NbxError(msg)
    return parsed.isoformat()


@click.command("erasure")
@CONFIG
@click.argument("notice_id", required=False)
@click.option("--reason", default=None, help="Why (sent to recipients; no personal data).")
@click.option(
    "--erase-by",
    "erase_by",
    default=None,
    help="ISO 8601 time by which every recipient must have erased it (its purged receipt is "
    "due then; recipients purge at once either way).",
)
@click.option("--legal-basis", default=None, help="The legal basis of the order (optional).")
@click.option("--notice-type", default="red", show_default=True, help="The notice's type.")
@click.option("--to", "to", default=None, help="Recipients (default: every bureau it went to).")
@click.option(
    "--resend-overdue",
    is_flag=True,
    help="Send every overdue purging message (cancel, erasure, refusal, delete) again, as a new "
    "message with the same deadline, to the recipients that have not confirmed it, and to them "
    "only.",
)
@JSON_OUT
def erasure(
    config_path: Path,
    notice_id: str | None,
    reason: str | None,
    erase_by: str | None,
    legal_basis: str | None,
    notice_type: str,
    to: str | None,
    resend_overdue: bool,
    as_json: bool,
) -> None:
    """Order recipients to erase NOTICE_ID and all copies, or (--resend-overdue) send the
    overdue purging messages again.

    Exit code 0 when every recipient got it, 2 when some failed (listed), 1 on an error.
    """
    from broker.node import Publisher

    config = _config(config_path)
    if resend_overdue:
        if notice_id is not None or reason or erase_by or legal_basis or to:
            raise click.UsageError("--resend-overdue takes no NOTICE_ID, --reason, --to or order")
        _resend(config, as_json)
        return
    if notice_id is None or reason is None:
        raise click.UsageError("give NOTICE_ID and --reason (or --resend-overdue)")
    deadline = _erase_by(erase_by)

    async def run() -> Any:
        async with Publisher.from_config(config) as pub:
            recipients = _order_recipients(pub, notice_id, to)
            details: dict[str, Any] = {"notice_id": notice_id, "reason": reason}
            if legal_basis is not None:
                details["legal_basis"] = legal_basis
            if deadline is not None:
                details["erase_by"] = deadline
            return await pub.lifecycle(
                "erasure", notice_id, notice_type, recipients, details=details
            )

    result = asyncio.run(run())
    _print_result(result, as_json)
    _exit_for(result)


def _resend(config: Any, as_json: bool) -> None:
    """``--resend-overdue``: one line (or JSON object) per order sent again."""
    from broker.node import Publisher

    async def run() -> Any:
        async with Publisher.from_config(config) as pub:
            return await pub.resend_overdue()

    results = asyncio.run(run())
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
    elif not results:
        click.echo("no overdue purge confirmations: nothing to send again")
    else:
        for result in results:
            _print_result(result, False)
    if any(o.status == SendStatus.FAILED for r in results for o in r.outcomes):
        raise SystemExit(2)


def register(group: click.Group) -> None:
    """Add this module's commands to ``group``."""
    group.add_command(erasure)
