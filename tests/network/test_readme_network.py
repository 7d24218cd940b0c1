"""The README's "Try a network" section, driven command by command on a fresh broker.

The commands are read from the README's code block, so the text and this test cannot drift. Two
substitutions keep the run deterministic: ``nbx network init`` is pointed at the test's broker
(``--bootstrap``, ``--impl``), and ``nbx network up`` (daemons running in the background) is
replaced by each daemon run with ``nbx consume --until-idle`` right after the commands that send
something (``publish``, ``cancel``): the recipients first, then the sender, which stores the
receipts they answered with (after ``publish`` as ``nbx consume`` processes, after ``cancel`` the
same daemons side by side in the test's process). ``nbx network up`` itself is tested in
test_network_cli.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from broker import devbroker
from tests.conftest import broker_impl
from tests.node.test_cli_node import consume_together, nbx_in_process

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
SENDER, RECIPIENTS = "IT", ("FR", "DE", "ES")


def readme_commands() -> list[list[str]]:
    """The ``nbx`` commands of the README's "Try a network" code block, as argument lists."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Try a network\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no ```sh block in the README's Try a network section"
    commands = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return [c for c in commands if c]


def nbx(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "broker", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=env,
    )


#: commands run in this process (:func:`nbx_in_process`: the same command, output and exit
#: code, without the second or two of imports a new process costs); the others (``network
#: init``, ``publish`` and the daemons) run as a user runs them, ``python -m broker``
IN_PROCESS = frozenset({"inbox", "status", "cancel"})


def run_nbx(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A README command, from ``cwd`` (its paths are relative to it)."""
    if args[0] not in IN_PROCESS:
        return nbx(cwd, *args)
    with contextlib.chdir(cwd):
        return nbx_in_process(*args)


def run_daemons(cwd: Path, bureaus: tuple[str, ...]) -> None:
    """Each bureau's daemon until it is idle (concurrently): what `nbx network up` runs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "broker", "consume", "--until-idle", "2", "--config"]
    procs = [
        subprocess.Popen(
            [*argv, f"net/{cc}/node.toml"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cc in bureaus
    ]
    for cc, proc in zip(bureaus, procs, strict=True):
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, (cc, err)


def status_lines(out: str, cc: str) -> list[str]:
    return [line for line in out.splitlines() if line.split()[:1] == [cc]]


@pytest.mark.e2e
def test_the_readme_network_section_runs_as_written(
    fresh_broker: devbroker.DevBroker, tmp_path: Path
) -> None:
    commands = readme_commands()
    assert [c[:2] for c in commands[:3]] == [
        ["nbx", "network"],
        ["nbx", "network"],
        ["nbx", "publish"],
    ]
    seen: list[tuple[str, str]] = []  # (command, output) in order
    for argv in commands:
        assert argv[0] == "nbx"
        args = argv[1:]
        if args[:2] == ["network", "up"]:
            assert args[2:] == ["net"]
            continue  # replaced by run_daemons after each command that sends
        if args[:2] == ["network", "init"]:
            args += ["--bootstrap", fresh_broker.bootstrap, "--impl", broker_impl()]
        done = run_nbx(tmp_path, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        seen.append((" ".join(args[:2]), done.stdout))
        if args[0] == "publish":  # the daemons as processes, as `nbx network up` runs them
            run_daemons(tmp_path, RECIPIENTS)
            run_daemons(tmp_path, (SENDER,))
        elif args[0] == "cancel":  # the same daemons, side by side in this process
            consume_together(*(tmp_path / "net" / cc / "node.toml" for cc in RECIPIENTS))
            consume_together(tmp_path / "net" / SENDER / "node.toml")

    init = seen[0][1].splitlines()
    assert init[:4] == [f"wrote net/{cc}/node.toml" for cc in (SENDER, *RECIPIENTS)]
    assert "  nbx network up net" in init  # the printed next steps are the README's
    assert "  nbx publish --config net/IT/node.toml net/notices/red.json --to FR,DE,ES" in init

    publish = seen[1][1].splitlines()
    assert publish[0].startswith("publish IT-2025-0001 msg ")
    assert [line.split()[:4] for line in publish[1:]] == [
        ["DE", "sent", "23", "disclosed,"],
        ["ES", "sent", "18", "disclosed,"],
        ["FR", "sent", "25", "disclosed,"],
    ]
    # each recipient's own view, as the README says: FR everything, DE 23 fields, ES 18
    shows = [out for what, out in seen if what.startswith("inbox show")]
    assert len(shows) == 4
    rules = {"FR": set(), "DE": {"de-no-biometrics"}, "ES": {"es-red-nothing-else"}}
    for cc, want, text in zip(RECIPIENTS, (0, 2, 7), shows[:3], strict=True):
        assert "status: active  state: actionable" in text
        held = [line for line in text.splitlines() if line.startswith("withheld: ")]
        assert len(held) == want, (cc, text)
        assert {line.rsplit("(", 1)[1].rstrip(")") for line in held} == rules[cc]
    for cc in RECIPIENTS:
        got = run_nbx(tmp_path, "inbox", "show", "IT-2025-0001", "--purpose", "check",
                  "--config", f"net/{cc}/node.toml", "--json")  # fmt: skip
        shown = json.loads(got.stdout)
        assert shown["sender"] == SENDER
        assert shown["status"] == "cancelled"  # read after the README's cancel
        assert shown["view"] is None  # the data is purged
    assert "cancelled" in shows[3]

    statuses = [out for what, out in seen if what.startswith("status IT-2025-0001")]
    assert len(statuses) == 2
    before, after = statuses
    for cc in RECIPIENTS:
        assert any("publish" in line and "delivered" in line for line in status_lines(before, cc))
        lines = status_lines(after, cc)
        assert any("cancel" in line and "purged" in line for line in lines), after
        assert f"{cc}  state    purged" in lines
