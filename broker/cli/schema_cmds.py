"""``nbx schema export``, ``nbx import interpol`` and ``nbx validate``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from broker.cli import names_file
from broker.schemas import NoticeInvalid, NoticeType, parse_notice
from broker.schemas.export import export_schemas
from broker.schemas.interpol import import_interpol, problem_lines


@click.group("schema")
def schema() -> None:
    """JSON Schemas of the notice and lifecycle models, and the AsyncAPI contract."""


@schema.command("export")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schemas"),
    show_default=True,
    help="Folder to write the schema files into.",
)
def export(out_dir: Path) -> None:
    """Write one JSON Schema file per model into the output folder, and asyncapi.yaml (the
    AsyncAPI 3 contract: servers, topics, operations per role, payloads referencing them)."""
    for path in export_schemas(out_dir):
        click.echo(str(path))


@click.group("import")
def import_() -> None:
    """Import notices from other formats."""


#: ``nbx import interpol`` shows its progress (stderr) for files of at least this many records
PROGRESS_MIN_RECORDS = 100


@names_file("file")
@import_.command("interpol")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--type",
    "notice_type",
    type=click.Choice(["red", "yellow", "un"]),
    default=None,
    help="Notice type of every record (default: read from each record's self link).",
)
@click.option("--bureau", default="XI", show_default=True, help="Issuing bureau of the notices.")
def interpol(file: Path, notice_type: str | None, bureau: str) -> None:
    """Read INTERPOL public-API JSON and print NBX notices as a JSON array.

    Every value that could not be mapped is reported on stderr, one line per problem. Exits 1
    when a record could not be imported at all. A file of 100 records or more shows the import's
    progress on stderr (a bar on a terminal, a line per tenth otherwise).
    """
    from broker.cli.progress import Progress

    with Progress("import interpol", unit="records") as progress:

        def on_record(done: int, total: int) -> None:
            if total >= PROGRESS_MIN_RECORDS:  # a large file: show how far the import is
                progress.count(done, total)

        result = import_interpol(
            file.read_bytes(),
            now=datetime.now(UTC).replace(microsecond=0),
            bureau=bureau,
            notice_type=NoticeType(notice_type) if notice_type else None,
            on_record=on_record,
        )
    notices = [n.model_dump(mode="json", exclude_none=True) for n in result.notices]
    click.echo(json.dumps(notices, indent=2, ensure_ascii=False))
    for line in problem_lines(result.problems):
        click.echo(f"nbx: warning: {line}", err=True)
    if any(p.kind == "invalid" for p in result.problems):
        sys.exit(1)


@click.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Check a notice file against the schema and the publication criteria.

    Every problem is one line ``nbx: error: FILE: FIELD: problem`` on stderr (a problem with the
    whole file, such as invalid JSON, names no field); exit code 1 when there is one.
    """
    from broker.cli import error_line
    from broker.schemas.validation import error_text

    try:
        notice = parse_notice(file.read_bytes())
    except NoticeInvalid as exc:
        for path, message in exc.errors:
            click.echo(error_line(str(file), error_text(path, message)), err=True)
        sys.exit(1)
    click.echo(f"{file}: valid {notice.notice_type} notice {notice.notice_id}")


def register(group: click.Group) -> None:
    """Add this module's commands to ``group``."""
    group.add_command(schema)
    group.add_command(import_)
    group.add_command(validate)
