"""Long runs show their progress on stderr: plain lines when stderr is not a terminal, a rich
display on one; never on stdout (a table, ``--json``)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.cli import main
from broker.cli.progress import Progress

FIXTURES = Path(__file__).resolve().parents[1] / "schemas" / "fixtures"


class FakeClock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_plain_phases_print_a_line_at_start_and_one_with_the_duration() -> None:
    out = io.StringIO()
    clock = FakeClock()
    with Progress("bench", stream=out, clock=clock) as progress:
        progress.phase("raw")
        clock.now += 1.25
        progress.phase("secure")
        clock.now += 2
    assert out.getvalue().splitlines() == [
        "nbx: bench: raw ...",
        "nbx: bench: raw done in 1.2 s",
        "nbx: bench: secure ...",
        "nbx: bench: secure done in 2.0 s",
    ]


def test_plain_counts_print_a_line_per_tenth_and_at_the_end() -> None:
    out = io.StringIO()
    with Progress("import interpol", unit="records", stream=out) as progress:
        for done in range(1, 26):
            progress.count(done, 25)
    lines = out.getvalue().splitlines()
    assert lines[0] == "nbx: import interpol: 25 records"
    assert lines[1] == "nbx: import interpol: 3/25 records (12 %)"
    assert lines[-1] == "nbx: import interpol: 25/25 records (100 %)"
    assert len(lines) == 11  # the total, then one line per tenth


def test_a_phase_that_fails_is_not_reported_done() -> None:
    out = io.StringIO()
    try:
        with Progress("bench", stream=out) as progress:
            progress.phase("raw")
            raise RuntimeError("broker gone")
    except RuntimeError:
        pass
    assert out.getvalue().splitlines() == ["nbx: bench: raw ..."]


def test_on_a_terminal_the_display_is_rich_not_plain_lines() -> None:
    out = Terminal()
    with Progress("bench", stream=out) as progress:
        assert progress.rich
        progress.phase("raw")
        progress.count(5, 10)
    text = out.getvalue()
    assert "nbx: bench: raw done in" in text  # the finished phase stays on the screen
    assert "nbx: bench: raw ...\n" not in text  # no plain start line: the spinner shows it
    assert "\x1b[" in text  # a live (cursor-controlled) display


def test_import_interpol_of_a_large_file_shows_progress_on_stderr_only(tmp_path: Path) -> None:
    record = json.loads((FIXTURES / "red_detail.json").read_text())
    records = [{**record, "entity_id": f"2021/{i:05d}"} for i in range(150)]
    doc = tmp_path / "page.json"
    doc.write_text(json.dumps({"_embedded": {"notices": records}}))
    result = CliRunner().invoke(main, ["import", "interpol", str(doc)])
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 150  # stdout is the JSON alone
    progress = [line for line in result.stderr.splitlines() if "nbx: import interpol:" in line]
    assert progress[0] == "nbx: import interpol: 150 records"
    assert progress[1] == "nbx: import interpol: 15/150 records (10 %)"
    assert progress[-1] == "nbx: import interpol: 150/150 records (100 %)"
    assert len(progress) == 11


def test_import_interpol_of_a_small_file_shows_no_progress() -> None:
    result = CliRunner().invoke(main, ["import", "interpol", str(FIXTURES / "red_detail.json")])
    assert result.exit_code == 0, result.stderr
    assert "nbx: import interpol:" not in result.stderr


@pytest.mark.process
def test_make_verify_prints_a_progress_line_per_test_on_stderr() -> None:
    """The slow profile (or NBX_VERIFY_PROGRESS=1) prints one line per verification test."""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/verify/test_hostile_files.py", "-q",
         "-p", "no:randomly", "-p", "no:cacheprovider",
         "-k", "policy_files or directory_documents"],
        cwd=root, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "NBX_VERIFY_PROGRESS": "1", "NBX_VERIFY_PROFILE": "default"},
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    name = "tests/verify/test_hostile_files.py::test_hostile_"
    lines = [line for line in out.stderr.splitlines() if line.startswith("nbx: verify:")]
    assert [line.split(" (")[0] for line in lines] == [
        f"nbx: verify: 1/2 {name}policy_files_raise_only_policy_errors passed",
        f"nbx: verify: 2/2 {name}directory_documents_raise_only_key_directory_errors passed",
    ]
    assert "nbx: verify:" not in out.stdout
