"""``nbx quarantine list|show``: what this bureau's daemon did not store, and why.

Reads ``nbx.quarantine.<CC>`` from the beginning (:mod:`broker.node.quarantine`: its own
consumer, no group, nothing committed, nothing decrypted) and prints each record's time, reason,
source position and size with the reason's explanation (docs/reason-codes.md).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from broker.cli.node_cmds import CONFIG, JSON_OUT
from broker.errors import NbxError
from broker.vocab import Reason

TIMEOUT = click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to read the topic to its end before giving up.",
)


def _since(value: str | None) -> datetime | None:
    """``--since``: an ISO 8601 date or time (UTC unless it says otherwise)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        msg = f"--since: expected an ISO 8601 date or time like 2026-11-30T12:00Z; got {value!r}"
        raise click.BadParameter(msg) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _read(config_path: Path, timeout_s: float) -> tuple[str, list[Any]]:
    """The bureau and every record of its quarantine topic."""
    from broker.node.config import NodeConfig
    from broker.node.quarantine import read_quarantine

    config = NodeConfig.load(config_path)
    records = asyncio.run(
        read_quarantine(config.kafka_settings(), config.bureau, timeout_s=timeout_s)
    )
    return config.bureau, records


def _stamp(at: datetime) -> str:
    """A record's time as the tables show it."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(record: Any) -> str:
    """The size column: bytes kept, and what was not."""
    if record.dropped is not None:
        return f"not kept ({record.dropped} B)"
    if record.truncated_from is not None:
        return f"{record.size} B of {record.truncated_from}"
    return f"{record.size} B"


@click.group("quarantine")
def quarantine() -> None:
    """Read this bureau's quarantine: the records its daemon did not store, and why."""


@quarantine.command("list")
@CONFIG
@click.option("--since", help="Only records quarantined at or after this time (ISO 8601, UTC).")
@click.option(
    "--reason",
    type=click.Choice([r.value for r in Reason]),
    help="Only records with this reason code (docs/reason-codes.md).",
)
@TIMEOUT
@JSON_OUT
def quarantine_list(
    config_path: Path, since: str | None, reason: str | None, timeout_s: float, as_json: bool
) -> None:
    """Every quarantined record, oldest first: partition:offset, time, reason, the position it
    was read at (topic:partition:offset), its size; then what each reason means. Nothing is
    decrypted, nothing is committed: a running daemon is not disturbed."""
    from broker.node.quarantine import select
    from broker.transport import quarantine as topic_of

    bureau, records = _read(config_path, timeout_s)
    chosen = select(records, since=_since(since), reason=reason)
    topic = topic_of(bureau)
    if as_json:
        out = {"bureau": bureau, "topic": topic, "records": [r.to_json() for r in chosen]}
        click.echo(json.dumps(out, indent=2))
        return
    if not chosen:
        filtered = " matching the filters" if since or reason else ""
        click.echo(f"{topic}: no quarantined records{filtered}")
        return
    click.echo(f"{topic}: {len(chosen)} record(s)")
    click.echo(f"{'RECORD':8} {'TIME':20} {'REASON':20} {'READ AT':28} SIZE")
    for r in chosen:
        click.echo(
            f"{r.partition}:{r.offset:<6} {_stamp(r.at):20} {r.reason:20} "
            f"{r.source or '-':28} {_size(r)}"
        )
    click.echo("")
    for code in sorted({r.reason for r in chosen}):
        explanation = next(r.explanation for r in chosen if r.reason == code)
        click.echo(f"{code}: {explanation}")
    click.echo("(every code: docs/reason-codes.md; one record: nbx quarantine show OFFSET)")


@quarantine.command("show")
@CONFIG
@click.argument("offset", type=click.IntRange(min=0))
@click.option(
    "--partition", type=click.IntRange(min=0), default=0, show_default=True, help="The partition."
)
@TIMEOUT
@JSON_OUT
def quarantine_show(
    config_path: Path, offset: int, partition: int, timeout_s: float, as_json: bool
) -> None:
    """One quarantined record: its headers and what its reason means (never its value)."""
    from broker.transport import quarantine as topic_of

    bureau, records = _read(config_path, timeout_s)
    topic = topic_of(bureau)
    found = next((r for r in records if r.offset == offset and r.partition == partition), None)
    if found is None:
        msg = f"{topic}: no record at partition {partition} offset {offset}"
        raise NbxError(msg)
    if as_json:
        click.echo(json.dumps({"bureau": bureau, "topic": topic, **found.to_json()}, indent=2))
        return
    click.echo(f"{topic} partition {partition} offset {offset}")
    click.echo(f"  time     {_stamp(found.at)}")
    click.echo(f"  reason   {found.reason}: {found.explanation}")
    click.echo(f"  read at  {found.source or '-'}")
    click.echo(f"  size     {_size(found)}")
    for key, value in found.headers:
        click.echo(f"  header   {key}: {value}")
    if not found.kept:
        click.echo(
            "  the package was valid and this bureau chose not to receive it: only these headers "
            "are kept (the audit log has the rejection: nbx audit export)"
        )


def register(group: click.Group) -> None:
    """Add this module's commands to ``group``."""
    group.add_command(quarantine)
