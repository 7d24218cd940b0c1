"""SIGTERM and SIGINT stop the daemon gracefully: it finishes, commits and exits 0, also when the
signal arrives while it is still joining its consumer group."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broker import devbroker
from tests.node.helpers import Net, example

pytestmark = pytest.mark.e2e


def _start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "broker", "consume", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_after_delivery_exits_0_and_commits(
    fresh_broker: devbroker.DevBroker,
    idempotence_supported: bool,
    tmp_path: Path,
    sig: signal.Signals,
) -> None:
    """The daemon delivers a notice, gets the signal, logs daemon.stopped and exits 0; a second
    daemon started afterwards finds nothing left to deliver (the offset was committed)."""
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence_supported)
    await net.publish("IT", example("red"), ["FR"])
    proc = _start(net.paths["FR"])
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if '"event": "package.delivered"' in line or time.monotonic() > deadline:
                break
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert '"event": "daemon.stopped"' in out
    again = subprocess.run(  # noqa: ASYNC221 - the test waits for the daemon on purpose
        [sys.executable, "-m", "broker", "consume", "--config", str(net.paths["FR"]),
         "--until-idle", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert '"event": "package.delivered"' not in again.stdout


def test_sigterm_during_startup_exits_0(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """A SIGTERM that arrives while the daemon is still connecting or joining its group stops it
    at once with exit code 0."""
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence_supported)
    proc = _start(net.paths["FR"])
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()  # logged before connecting, with the handlers in place
        assert '"event": "daemon.starting"' in first, first
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
