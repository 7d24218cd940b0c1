"""``nbx report``: the transparency report of a node (docs/safeguards.md, "Transparency
report")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from broker.cli.node_cmds import CONFIG, _config
from broker.errors import NbxError


def _text(report: dict[str, Any]) -> list[str]:
    """The report as a few plain lines per row (the JSON and the page have every figure)."""
    lines = [
        f"transparency report of {report['bureau']}: {report['since'] or 'start'} to "
        f"{report['until'] or 'now'} (counts below {report['threshold']} read "
        f"{report['suppressed']})"
    ]
    rows = [*report["rows"], {"sender": "all", "notice_type": "all", **report["totals"]}]
    for r in rows:
        refused = " ".join(f"{g}={n}" for g, n in r["refused"].items() if n)
        purged = " ".join(f"{p}={n}" for p, n in r["purged"].items() if n)
        quarantined = " ".join(f"{q}={n}" for q, n in r["quarantined"].items() if n)
        times = r["review_time"]
        lines.append(
            f"{r['sender'] or 'unknown'} {r['notice_type'] or 'unknown'}: "
            f"received {r['received']}, actionable {r['actionable']}, "
            f"refusals {r['refusals']}{f' ({refused})' if refused else ''}, "
            f"declined by policy {r['declined_by_policy']}, blocked {r['blocked']}, "
            f"deleted {r['deleted']}, overdue {r['overdue']}"
        )
        if purged:
            lines.append(f"  purged: {purged}")
        if quarantined:
            lines.append(f"  quarantined: {quarantined}")
        if times["reviews"]:
            lines.append(
                f"  reviews {times['reviews']}: median {times['median_s'] or '-'} s, "
                f"p95 {times['p95_s'] or '-'} s"
            )
    for o in report["overdue_by_recipient"]:
        lines.append(f"overdue purge confirmations from {o['recipient']}: {o['overdue']}")
    return lines


@click.command("report")
@CONFIG
@click.option("--since", default=None, help="From (YYYY-MM-DD or ISO 8601; default: the start).")
@click.option("--until", default=None, help="Before (YYYY-MM-DD or ISO 8601; default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the report as one self-contained HTML page to this file.",
)
def report(
    config_path: Path,
    since: str | None,
    until: str | None,
    as_json: bool,
    html_path: Path | None,
) -> None:
    """The transparency report of this node for a period: per sender and notice type, messages
    received, actionable, refused by ground, declined, quarantined, blocked, deleted, purged by
    reason, overdue purge confirmations and review times; counts below 5 read "<5"."""
    from broker.report import parse_time, render_html, report_from_store
    from broker.sinks import open_sink

    if as_json and html_path is not None:
        msg = "--json and --html: choose one"
        raise NbxError(msg)
    now = datetime.now(UTC)
    start = None if since is None else parse_time(since, option="--since")
    end = (
        now.isoformat(timespec="milliseconds")
        if until is None
        else parse_time(until, option="--until")
    )
    if start is not None and start >= end:
        msg = f"--since {since} is not before --until {until or 'now'}"
        raise NbxError(msg)
    config = _config(config_path)
    sink = open_sink(config.sink.url, password_env=config.sink.password_env)
    try:
        published = report_from_store(sink, bureau=config.bureau, since=start, until=end, now=now)
    finally:
        sink.close()
    if as_json:
        click.echo(json.dumps(published, indent=2))
    elif html_path is not None:
        html_path.write_text(render_html(published), encoding="utf-8")
        click.echo(f"wrote the transparency report to {html_path}")
    else:
        for line in _text(published):
            click.echo(line)


def register(group: click.Group) -> None:
    """Add this module's commands to ``group``."""
    group.add_command(report)
