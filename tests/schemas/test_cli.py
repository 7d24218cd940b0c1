"""The `nbx validate`, `nbx import interpol` and `nbx schema export` commands."""

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from broker.cli import main

from .conftest import EXAMPLES, FIXTURES, ROOT


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_validate_accepts_every_example(path: Path) -> None:
    """Every file under examples/notices/ is accepted by `nbx validate` (exit 0)."""
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_examples_cover_every_type() -> None:
    """There is one example per notice type."""
    from broker.schemas import NoticeType

    assert {p.stem for p in EXAMPLES.glob("*.json")} == {t.value for t in NoticeType}


def test_validate_prints_every_error_and_exits_1(tmp_path: Path, red: dict[str, Any]) -> None:
    """An invalid file gives one `nbx: error: FILE: path: message` line per error, exit 1."""
    red["judicial"]["charges"] = []
    red["language"] = "xx"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(red))
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"nbx: error: {bad}: language: unknown ISO 639-1 language code 'xx'"
    ]
    red["language"] = "en"
    bad.write_text(json.dumps(red))
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.stderr.splitlines() == [
        f"nbx: error: {bad}: judicial.charges: a red notice needs at least one charge"
    ]


def test_validate_missing_file_is_one_line(tmp_path: Path) -> None:
    """A missing file is one `nbx: error:` line, no traceback."""
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "nope.json")])
    assert result.exit_code == 1
    assert result.stderr == f"nbx: error: {tmp_path / 'nope.json'}: no such file or directory\n"


def test_import_interpol_prints_notices_and_warnings() -> None:
    """The import prints a JSON array of notices and reports problems on stderr."""
    result = CliRunner().invoke(main, ["import", "interpol", str(FIXTURES / "yellow_detail.json")])
    assert result.exit_code == 0
    (notice,) = json.loads(result.stdout)
    assert notice["notice_type"] == "yellow"
    assert "nbx: warning: 2024/3310: unmapped: hairs_id: unknown colour code 'XXX'" in result.stderr


def test_import_interpol_exits_1_when_a_record_is_not_imported(tmp_path: Path) -> None:
    """A record that could not be imported makes the command fail after printing the rest."""
    doc = tmp_path / "x.json"
    doc.write_text(json.dumps({"entity_id": "1", "name": "X"}))
    result = CliRunner().invoke(main, ["import", "interpol", str(doc)])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == []


def test_schema_export_writes_files(tmp_path: Path) -> None:
    """`nbx schema export --out DIR` writes the same files as the committed schemas/."""
    result = CliRunner().invoke(main, ["schema", "export", "--out", str(tmp_path)])
    assert result.exit_code == 0
    for path in tmp_path.iterdir():
        assert path.read_text() == (ROOT / "schemas" / path.name).read_text()
