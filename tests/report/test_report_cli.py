"""`nbx report`: its options, its error lines, and its three outputs on a node's store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from broker.cli import main
from broker.node.provision import provision


def _report(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["report", "--config", str(config), *args])


@pytest.fixture
def fr(tmp_path: Path) -> Path:
    """The node file of a provisioned bureau FR (its store is empty)."""
    return provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1")["FR"]


def test_an_empty_store_gives_an_empty_report_in_each_form(fr: Path, tmp_path: Path) -> None:
    """No rows, every total 0, the period as given (in the store's time format); the page is
    written where asked and its path printed."""
    out = _report(fr, "--since", "2026-11-01", "--until", "2026-12-01T12:00+01:00", "--json")
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["format"] == "nbx-report/1"
    assert report["bureau"] == "FR"
    assert (report["since"], report["until"]) == (
        "2026-11-01T00:00:00.000+00:00",
        "2026-12-01T11:00:00.000+00:00",
    )
    assert report["rows"] == []
    assert report["totals"]["received"] == 0
    assert report["totals"]["refused"] == dict.fromkeys(
        ("criteria", "art2", "art3", "refugee", "other"), 0
    )
    assert report["overdue_by_recipient"] == []

    page = tmp_path / "out" / "report.html"
    page.parent.mkdir()
    out = _report(fr, "--since", "2026-11-01", "--html", str(page))
    assert out.exit_code == 0, out.output
    assert out.output == f"wrote the transparency report to {page}\n"
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    out = _report(fr)
    assert out.exit_code == 0, out.output
    first, totals = out.output.splitlines()
    assert first.startswith("transparency report of FR: start to 20")
    assert first.endswith("(counts below 5 read <5)")
    assert totals == (
        "all all: received 0, actionable 0, refusals 0, declined by policy 0, blocked 0, "
        "deleted 0, overdue 0"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--since", "last week"],
            "nbx: error: --since 'last week': expected a date (YYYY-MM-DD) or an ISO 8601 time",
        ),
        (
            ["--since", "2026-12-01", "--until", "2026-11-01"],
            "nbx: error: --since 2026-12-01 is not before --until 2026-11-01",
        ),
        (["--json", "--html", "x.html"], "nbx: error: --json and --html: choose one"),
    ],
)
def test_bad_options_are_one_error_line(
    fr: Path, args: list[str], line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each mistake is one line on stderr and exit code 1; nothing is written."""
    monkeypatch.chdir(tmp_path)
    out = _report(fr, *args)
    assert out.exit_code == 1
    assert out.output == f"{line}\n"
    assert not Path("x.html").exists()
