"""`nbx consume` with `[metrics] port` (here from NBX_METRICS__PORT): the daemon logs where it
listens, turns ready, serves its delivery count, and closes the port when SIGTERM stops it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broker.vocab import Metric
from tests.metrics.helpers import Answer, free_port, get_now, samples
from tests.node.helpers import Net, example

pytestmark = pytest.mark.e2e


def _until(url: str, check: object, timeout_s: float = 120.0) -> Answer:
    """GET ``url`` until ``check(answer)`` holds (or the time is up: the last answer)."""
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = get_now(url)
        except OSError:
            answer = Answer(0, "")
        if check(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_nbx_consume_serves_metrics_health_and_readiness(
    tmp_path: Path, kafka_bootstrap: str, idempotence_supported: bool
) -> None:
    """One notice waits for FR; `nbx consume` logs metrics.listening with the port, /readyz
    answers ready, /metrics counts the delivery, SIGTERM exits 0 and the port is closed."""
    net = Net(tmp_path, ("IT", "FR"), kafka_bootstrap, idempotence=idempotence_supported)
    asyncio.run(net.publish("IT", example("red", notice_id="IT-2026-0101"), ["FR"]))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker", "consume", "--config", str(net.paths["FR"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NBX_METRICS__PORT": str(port)},
    )
    assert proc.stdout is not None
    try:
        listening = None
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "metrics.listening":
                listening = event
                break
        assert listening is not None
        assert (listening["bureau"], listening["port"]) == ("FR", port)
        assert _until(f"{base}/readyz", lambda a: a.status == 200) == Answer(200, "ready\n")
        answer = _until(
            f"{base}/metrics",
            lambda a: a.status == 200 and samples(a.body).get((Metric.DELIVERED, ())) == 1,
        )
        assert samples(answer.body)[(Metric.DELIVERED, ())] == 1
        assert get_now(f"{base}/healthz") == Answer(200, "ok\n")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert '"event": "daemon.stopped"' in out
    with pytest.raises(OSError, match="Connection refused"):
        get_now(f"{base}/healthz")
