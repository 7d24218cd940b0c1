"""A real TLS terminator in front of a real broker: Debian's ``stunnel`` (``make stunnel``) in
front of tansu, whose ``--advertised-listener-url`` names the TLS port, so that every connection
a client makes after the bootstrap (metadata names the broker by that port) goes through TLS too.

One stunnel process serves, for the whole session:

* ``tls``: the broker's certificate (CN ``broker``, SAN 127.0.0.1 and localhost) from the test CA,
  no client certificate asked; in front of the ``tls`` tansu (advertising this port);
* ``expired``, ``badname``: the same broker behind an expired certificate, and behind one for
  another host name (the handshake fails, so what they advertise does not matter);
* ``mtls``: the broker's certificate, and a client certificate from the test CA required
  (``verifyChain``, ``requireCert``); in front of a second tansu advertising this port.

Certificates are made with cryptography's x509 (:mod:`broker.deploy.certs`) in a tmp folder.
stunnel and both brokers are stopped by pid at the end of the session.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker import devbroker
from broker.deploy.certs import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    Issued,
    issue,
    load_issued,
    network_certs,
    new_ca,
)
from broker.errors import DevBrokerError

#: the services of the stunnel process (see the module docstring)
SERVICES = ("tls", "expired", "badname", "mtls")


@dataclass(frozen=True)
class Pki:
    """The test certificates, as files in ``folder``."""

    folder: Path

    def path(self, name: str) -> Path:
        """``folder/name``."""
        return self.folder / name


def _write(folder: Path, name: str, issued: Issued) -> None:
    (folder / f"{name}.pem").write_bytes(issued.cert_pem())
    key = folder / f"{name}.key"
    key.write_bytes(issued.key_pem())
    key.chmod(0o600)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The test certificates (:func:`make_pki`) for the session."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def make_pki(folder: Path) -> Pki:
    """The network CA ``ca`` and client certificates ``nbx-FR``, ``nbx-IT``, ``nbx-ES`` made by
    :func:`broker.deploy.certs.network_certs` (``nbx deploy certs``); from that CA the broker's
    certificates ``server`` (valid for 127.0.0.1), ``expired`` and ``badname`` (valid for
    ``other.example`` only); and a foreign CA ``other-ca`` with a client certificate
    ``foreign-FR`` (CN ``nbx-FR``)."""
    now = datetime.now(UTC)
    # the network CA and the bureaus' client certificates exactly as `nbx deploy certs` makes them
    network_certs(["FR", "IT", "ES"], folder, now=now)
    ca = load_issued(folder / CA_CERT_FILE, folder / CA_KEY_FILE)
    other = new_ca(now=now, name="another CA")
    (folder / "other-ca.pem").write_bytes(other.cert_pem())
    local = ["127.0.0.1", "localhost"]
    _write(folder, "server", issue(ca, "broker", now=now, server_names=local))
    expired_from = now - timedelta(days=30)
    _write(
        folder,
        "expired",
        issue(ca, "broker", now=now, days=-1, server_names=local, not_before=expired_from),
    )
    _write(folder, "badname", issue(ca, "broker", now=now, server_names=["other.example"]))
    _write(folder, "foreign-FR", issue(other, "nbx-FR", now=now))
    return Pki(folder)


@dataclass
class TlsFront:
    """The stunnel process and the brokers behind it; ``port[service]`` is a service's TLS port."""

    process: subprocess.Popen[bytes]
    port: dict[str, int]
    log: Path
    brokers: dict[str, devbroker.DevBroker]

    def bootstrap(self, service: str) -> str:
        """``127.0.0.1:PORT`` of ``service``."""
        return f"{devbroker.HOST}:{self.port[service]}"

    def log_text(self) -> str:
        """What stunnel logged."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Stop stunnel (SIGTERM, then SIGKILL) and the brokers, by pid."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for b in self.brokers.values():
            b.stop()


def stunnel_binary() -> str:
    """The stunnel command, or a failed test saying how to install it."""
    found = shutil.which("stunnel") or shutil.which("stunnel4")
    if found is None:
        pytest.fail("stunnel is not installed: run `make stunnel` (Debian's stunnel4)", False)
    return found


def _config(pki: Pki, ports: dict[str, int], upstream: dict[str, int], log: Path) -> str:
    lines = ["foreground = yes", "pid =", "debug = notice", f"output = {log}"]
    for service in SERVICES:
        cert = {"expired": "expired", "badname": "badname"}.get(service, "server")
        lines += [
            f"[{service}]",
            f"accept = {devbroker.HOST}:{ports[service]}",
            f"connect = {devbroker.HOST}:{upstream[service]}",
            f"cert = {pki.path(cert + '.pem')}",
            f"key = {pki.path(cert + '.key')}",
        ]
        if service == "mtls":
            lines += [f"CAfile = {pki.path('ca.pem')}", "verifyChain = yes", "requireCert = yes"]
    return "\n".join(lines) + "\n"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((devbroker.HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_front(pki: Pki, folder: Path) -> TlsFront:
    """Start two tansu brokers and stunnel in front of them (module docstring); the test fails
    with the logs if they do not come up. Stop them with :meth:`TlsFront.stop`."""
    binary = stunnel_binary()
    ports = {s: devbroker.free_port() for s in SERVICES}
    brokers: dict[str, devbroker.DevBroker] = {}
    try:
        for name in ("tls", "mtls"):
            brokers[name] = devbroker.start("tansu", timeout_s=60, advertised_port=ports[name])
    except DevBrokerError as exc:
        for b in brokers.values():
            b.stop()
        pytest.fail(f"tansu did not start behind stunnel: {exc}", pytrace=False)
    upstream = {s: brokers["mtls" if s == "mtls" else "tls"].port for s in SERVICES}
    log = folder / "stunnel.log"
    conf = folder / "stunnel.conf"
    conf.write_text(_config(pki, ports, upstream, log))
    process = subprocess.Popen(
        [binary, str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    front = TlsFront(process, ports, log, brokers)
    deadline = time.monotonic() + 30
    while not all(_listening(p) for p in ports.values()):
        if process.poll() is not None or time.monotonic() > deadline:
            front.stop()
            pytest.fail(f"stunnel did not listen; its log:\n{front.log_text()}", False)
        time.sleep(0.05)
    return front


@pytest.fixture(scope="session")
def tls_front(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFront]:
    """stunnel in front of two tansu brokers for the session (module docstring)."""
    front = start_front(pki, tmp_path_factory.mktemp("stunnel"))
    try:
        yield front
    finally:
        front.stop()
