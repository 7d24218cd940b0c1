"""The README's "Add a bureau to a running network" section, driven command by command on a fresh
broker.

The commands are read from the README's code block. Substitutions keep the run on the test's
broker: ``nbx network init`` gets ``--bootstrap``/``--impl``, and every ``127.0.0.1:19092`` and
``--dev-broker noida`` is replaced by the test broker's address and implementation. The
long-running commands: ``nbx network up`` (its broker and daemons) is replaced by what it does
before the daemons start, publishing the directory to ``nbx.directory``
(:func:`broker.node.network.publish_network_directory`, the function it calls), and IT's daemon is
run until idle once PT answered; PT's ``nbx consume`` runs as written, in the background, for the
rest of the walk (the README starts it in a terminal of its own). ``nbx network up`` itself is
tested in test_network_cli.py.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from broker import devbroker
from broker.node.network import DEFAULT_BOOTSTRAP, Network, publish_network_directory
from tests.conftest import broker_impl
from tests.network.test_readme_network import run_nbx
from tests.node.helpers import read_topic
from tests.node.test_cli_node import consume_together

pytestmark = [pytest.mark.process, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SECTION = "Add a bureau to a running network"


def readme_commands() -> list[list[str]]:
    """The ``nbx`` commands of the README's section, as argument lists."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"\n## {SECTION}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, f"no ```sh block in the README's {SECTION} section"
    commands = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return [c for c in commands if c]


class Daemon:
    """A ``nbx consume`` in the background, its output lines read as they come."""

    def __init__(self, cwd: Path, args: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "broker", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._new.put(line.rstrip("\n"))
        self._new.put(None)

    def wait_for(self, text: str, timeout_s: float = 120.0) -> str:
        """The first line containing ``text`` (waiting for it; fails if the daemon exits)."""
        for seen in self.lines:
            if text in seen:
                return seen
        while True:
            line = self._new.get(timeout=timeout_s)
            assert line is not None, f"the daemon exited before {text!r}: {self.lines}"
            self.lines.append(line)
            if text in line:
                return line

    def stop(self) -> int:
        """SIGTERM (by pid), wait, return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._pump.join(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


def _substitute(args: list[str], bootstrap: str) -> list[str]:
    """The test broker's address and implementation for the README's defaults."""
    out = [bootstrap if a == DEFAULT_BOOTSTRAP else a for a in args]
    if "--dev-broker" in out:
        out[out.index("--dev-broker") + 1] = broker_impl()
    return out


def test_the_readme_join_section_runs_as_written(
    fresh_broker: devbroker.DevBroker, tmp_path: Path
) -> None:
    commands = readme_commands()
    words = [" ".join(c[1:3]) for c in commands]
    assert words == [
        "network init",
        "network up",
        "node join",
        "consume --config",
        "directory add",
        "directory publish",
        "publish --config",
        "inbox show",
        "status IT-2025-0001",
    ]
    bootstrap = fresh_broker.bootstrap
    outputs: dict[str, str] = {}
    pt: Daemon | None = None
    try:
        for argv, what in zip(commands, words, strict=True):
            assert argv[0] == "nbx"
            args = _substitute(argv[1:], bootstrap)
            if what == "network up":
                net = Network.load(tmp_path / args[2])
                assert asyncio.run(publish_network_directory(net)) == 7  # serial: six added
                continue
            if what == "consume --config":
                pt = Daemon(tmp_path, args)
                waiting = pt.wait_for('"event": "node.waiting-for-listing"')
                assert '"bureau": "PT"' in waiting
                assert not any('"daemon.started"' in line for line in pt.lines)
                continue
            if what == "network init":
                args += ["--bootstrap", bootstrap, "--impl", broker_impl()]
            # inbox show and status in this process (run_nbx), the others as processes
            done = run_nbx(tmp_path, *args)
            assert done.returncode == 0, (args, done.stdout, done.stderr)
            outputs[what] = done.stdout
            if what == "directory publish":
                assert pt is not None
                pt.wait_for('"event": "node.listed"')
                pt.wait_for('"event": "daemon.started"')
            if what == "publish --config":
                assert pt is not None
                pt.wait_for('"event": "package.delivered"')
                # PT's receipt is on IT's receipts topic: IT's daemon (up's) stores it
                asyncio.run(read_topic(bootstrap, "nbx.receipts.IT", expect=1))
                consume_together(tmp_path / "six" / "IT" / "node.toml")  # in this process
    finally:
        code = pt.stop() if pt is not None else 0
    assert code == 0, pt.lines if pt is not None else None

    join = outputs["node join"].splitlines()
    assert join[0] == "wrote six/PT/keys (private keys mode 0600), six/PT/node.toml and " \
        "six/PT/PT.join.json"  # fmt: skip
    fingerprint = join[1].removeprefix("join request fingerprint ")
    added = outputs["directory add"].splitlines()
    assert added[1:4] == [
        "bureau   PT",
        "name     NCB Lisbon",
        "contact  ncb.lisbon@example.pt  (for you: not put in the directory)",
    ]
    assert added[5] == f"fingerprint {fingerprint}  (compare with the requester's, out of band)"
    assert added[6] == "wrote six/directory.json serial 8 (was 7)"
    assert outputs["directory publish"] == "published serial 8 to nbx.directory\n"
    sent = outputs["publish --config"].splitlines()
    assert [line.split()[:2] for line in sent[1:]] == [["PT", "sent"]]
    shown = outputs["inbox show"]
    assert "status: active  state: actionable" in shown
    status = [line for line in outputs["status IT-2025-0001"].splitlines() if line.startswith("PT")]
    assert any("publish" in line and "delivered" in line for line in status), status
    assert (tmp_path / "six" / "PT" / "PT.sqlite").exists()
