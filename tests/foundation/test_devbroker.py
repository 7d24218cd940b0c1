"""The embedded Kafka-protocol broker starts on loopback, answers Kafka and stops by pid."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from broker import devbroker
from broker.errors import DevBrokerError


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0); check its state
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z"


@pytest.mark.parametrize("impl", devbroker.IMPLS)
def test_start_answers_kafka_and_stop_leaves_nothing(impl: devbroker.Impl) -> None:
    """Each implementation answers ApiVersions on 127.0.0.1; stop ends its pid, cleans its data."""
    broker = devbroker.start(impl, timeout_s=60)
    try:
        assert broker.bootstrap.startswith("127.0.0.1:")
        assert devbroker.kafka_api_versions_ok("127.0.0.1", broker.port)
        assert broker.is_running()
    finally:
        broker.stop()
    assert _gone(broker.pid)
    assert not broker.data_dir.exists()
    assert not devbroker.kafka_api_versions_ok("127.0.0.1", broker.port, timeout_s=0.5)


def test_readiness_needs_a_kafka_answer_not_only_tcp() -> None:
    """A TCP port that accepts connections but does not speak Kafka is not 'ready'."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        assert not devbroker.kafka_api_versions_ok("127.0.0.1", port)
    finally:
        server.close()


def test_start_failure_reports_the_broker_log_and_leaves_nothing() -> None:
    """A broker that cannot bind its port fails loudly with its own log, and no process remains."""
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        with pytest.raises(DevBrokerError) as info:
            devbroker.start("noida", port=port, timeout_s=15)
    finally:
        blocker.close()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "its log:" in message
    assert len(message.split("its log:", 1)[1].strip()) > 0


def test_unknown_implementation_is_refused() -> None:
    """Only the two pinned implementations can be chosen."""
    with pytest.raises(DevBrokerError, match="unknown broker implementation 'kafka'"):
        devbroker.start("kafka")  # type: ignore[arg-type]


def test_cli_dev_broker_runs_in_foreground_and_ctrl_c_stops_it() -> None:
    """`nbx dev-broker` prints the bootstrap address; SIGINT stops the broker, its pid is gone."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker", "dev-broker", "--impl", "noida"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"bootstrap=127\.0\.0\.1:(\d+) pid=(\d+)", first)
        assert match, first + (proc.stderr.read() if proc.stderr else "")
        port, pid = int(match.group(1)), int(match.group(2))
        assert devbroker.kafka_api_versions_ok("127.0.0.1", port)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "broker stopped" in out
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(pid)
