"""Verification suite plumbing: log capture for the whole session, the canary check on every
captured log line, and the summary table printed at the end (also saved in the pytest cache as
``nbx/verify-summary``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.verify.support import LOGS, PROFILE, SLOW, TALLY, canary_hits, install_log_capture


@pytest.fixture(scope="session", autouse=True)
def _capture_logs() -> Iterator[None]:
    """Every structlog and stdlib log line of the session goes to one capture; at the end, none of
    them may contain a canary (a planted personal-data value)."""
    install_log_capture()
    yield
    hits = canary_hits(LOGS.text())
    TALLY.count("canary hits", len(hits))
    assert not hits, f"canaries in the captured logs: {hits[:5]}"


@pytest.fixture(autouse=True)
def _log_capture_stays_installed() -> None:
    """Another test module may reconfigure structlog; put the capture back before each test."""
    install_log_capture()


def _row(name: str, value: Any) -> str:
    return f"  {name:<40} {value:>10}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print what the verification suite tried and what happened."""
    if not TALLY.used:
        return
    data = TALLY.to_json()
    data["exit_status"] = int(exitstatus)
    if getattr(config, "cache", None) is not None:  # absent with -p no:cacheprovider
        config.cache.set("nbx/verify-summary", data)
    tr = terminalreporter
    tr.section(f"NBX verification summary (profile {PROFILE})")
    tr.write_line("inputs tried per boundary")
    for name, n in sorted(data["inputs"].items()):
        tr.write_line(_row(name, n))
    tr.write_line("faults injected")
    for name, n in sorted(data["faults"].items()):
        tr.write_line(_row(name, n))
    tr.write_line("messages")
    for name, n in data["messages"].items():
        must = "  (must be 0)" if name in ("lost", "duplicated", "crashes", "canary hits") else ""
        tr.write_line(_row(name, n) + must)
    tr.write_line(json.dumps(data, sort_keys=True))


class _Progress:
    """``make verify`` runs for many minutes: one line on stderr as each test ends (slow profile,
    or ``NBX_VERIFY_PROGRESS=1``), ``nbx: verify: 3/27 tests/verify/...::test_x passed (12.3 s)``.
    """

    def __init__(self) -> None:
        self.total = 0
        self.done = 0


_PROGRESS = _Progress()


def _progress_on() -> bool:
    return SLOW or os.environ.get("NBX_VERIFY_PROGRESS") == "1"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Count the verification tests of this run (the denominator of the progress lines)."""
    _PROGRESS.total = sum(1 for item in session.items if "tests/verify/" in item.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A progress line on stderr when a verification test has ended (passed, failed, skipped)."""
    ended = report.when == "call" or (report.when == "setup" and not report.passed)
    if not _progress_on() or not ended or "tests/verify/" not in report.nodeid:
        return
    _PROGRESS.done += 1
    print(
        f"nbx: verify: {_PROGRESS.done}/{_PROGRESS.total} {report.nodeid} {report.outcome} "
        f"({report.duration:.1f} s)",
        file=sys.__stderr__,
        flush=True,
    )
