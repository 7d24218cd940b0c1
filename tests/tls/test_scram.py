"""SASL/SCRAM as far as it can be tested here: the development brokers cannot check passwords
(docs/security/transport.md says what was not run). A small Kafka-protocol listener in this file
speaks TLS (the test CA's broker certificate), answers ApiVersions, SaslHandshake and
SaslAuthenticate, and checks the SCRAM exchange (RFC 5802/7677) against the password it was
given: the node's client sends the configured mechanism and user, proves the password it read
from the environment variable named in node.toml, and the password appears in no error, log
line or repr."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka.conn import create_conn

from broker.errors import ConfigError, TransportError
from broker.node.config import NodeConfig
from broker.transport.kafka import KafkaSettings, list_topics, security_kwargs
from tests.node.helpers import Net
from tests.tls.conftest import Pki

PASSWORD = "correct horse battery staple 7f3a"
ITERATIONS = 4096
SASL_AUTHENTICATION_FAILED = 58


def _string(s: str) -> bytes:
    data = s.encode()
    return struct.pack(">h", len(data)) + data


@dataclass
class ScramListener:
    """What the listener saw: mechanisms asked for, SCRAM users, and whether a proof matched."""

    password: str
    mechanisms: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    proofs_ok: list[bool] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one client connection until it closes."""
        scram: dict[str, Any] = {}
        try:
            while True:
                (size,) = struct.unpack(">i", await reader.readexactly(4))
                frame = await reader.readexactly(size)
                api_key, version, correlation, id_len = struct.unpack(">hhih", frame[:10])
                body = frame[10 + max(id_len, 0) :]
                answer = self._answer(api_key, version, body, scram)
                writer.write(struct.pack(">ii", len(answer) + 4, correlation) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def _answer(self, api_key: int, version: int, body: bytes, scram: dict[str, Any]) -> bytes:
        if api_key == 18:  # ApiVersions v0: error, [api_key, min, max]
            apis = [(18, 0, 0), (17, 0, 1), (36, 0, 0)]
            return struct.pack(">hi", 0, len(apis)) + b"".join(
                struct.pack(">hhh", *a) for a in apis
            )
        if api_key == 17:  # SaslHandshake: error, [mechanisms]
            (n,) = struct.unpack(">h", body[:2])
            self.mechanisms.append(body[2 : 2 + n].decode())
            return struct.pack(">hi", 0, 1) + _string("SCRAM-SHA-512")
        assert api_key == 36, api_key  # SaslAuthenticate v0: error, message, auth bytes
        (n,) = struct.unpack(">i", body[:4])
        token = body[4 : 4 + n].decode()
        if "first" not in scram:
            return self._server_first(token, scram)
        return self._server_final(token, scram)

    def _server_first(self, token: str, scram: dict[str, Any]) -> bytes:
        bare = token.split(",", 2)[2]  # "n,,n=user,r=nonce"
        attrs = dict(a.split("=", 1) for a in bare.split(","))
        self.users.append(attrs["n"])
        salt = os.urandom(16)
        nonce = attrs["r"] + base64.b64encode(os.urandom(18)).decode()
        first = f"r={nonce},s={base64.b64encode(salt).decode()},i={ITERATIONS}"
        scram |= {"bare": bare, "first": first, "salt": salt}
        return _auth_ok(first.encode())

    def _server_final(self, token: str, scram: dict[str, Any]) -> bytes:
        without_proof, _, proof = token.rpartition(",p=")
        salted = hashlib.pbkdf2_hmac("sha512", self.password.encode(), scram["salt"], ITERATIONS)
        client_key = hmac.digest(salted, b"Client Key", "sha512")
        message = f"{scram['bare']},{scram['first']},{without_proof}".encode()
        signature = hmac.digest(hashlib.sha512(client_key).digest(), message, "sha512")
        expected = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        ok = hmac.compare_digest(base64.b64decode(proof), expected)
        self.proofs_ok.append(ok)
        if not ok:
            message_text = "Authentication failed: Invalid username or password"
            return (
                struct.pack(">h", SASL_AUTHENTICATION_FAILED)
                + _string(message_text)
                + (struct.pack(">i", 0))
            )
        server_key = hmac.digest(salted, b"Server Key", "sha512")
        verifier = base64.b64encode(hmac.digest(server_key, message, "sha512")).decode()
        return _auth_ok(f"v={verifier}".encode())


def _auth_ok(data: bytes) -> bytes:
    return struct.pack(">hh", 0, -1) + struct.pack(">i", len(data)) + data


@pytest.fixture
def listener(pki: Pki) -> Iterator[ScramListener]:
    """The SCRAM-checking listener on a free loopback port, over TLS with the broker's test
    certificate; it knows :data:`PASSWORD`. It runs its own event loop in a thread, as a broker
    is another process: the node's TLS diagnosis (a blocking connection) must not stall it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.path("server.pem"), pki.path("server.key"))
    state = ScramListener(PASSWORD)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(state.serve, "127.0.0.1", 0, ssl=context))
    state.port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


@pytest.fixture(scope="module")
def fr(tmp_path_factory: pytest.TempPathFactory) -> NodeConfig:
    """FR's provisioned node configuration."""
    net = Net(tmp_path_factory.mktemp("net"), ("FR", "IT"), "127.0.0.1:1", idempotence=False)
    return net.configs["FR"]


def sasl(fr: NodeConfig, pki: Pki, port: int) -> NodeConfig:
    """``fr`` with ``SASL_SSL``, SCRAM-SHA-512, user nbx-FR, password in $NBX_TEST_SCRAM."""
    kafka = {
        "bootstrap": f"127.0.0.1:{port}",
        "security_protocol": "SASL_SSL",
        "ssl_cafile": pki.path("ca.pem"),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "nbx-FR",
        "sasl_password_env": "NBX_TEST_SCRAM",
    }
    return fr.model_copy(update={"kafka": fr.kafka.model_copy(update=kafka)})


async def _authenticate(settings: KafkaSettings) -> None:
    conn = await create_conn(
        "127.0.0.1", int(settings.bootstrap.rpartition(":")[2]), **security_kwargs(settings)
    )
    conn.close()


async def test_the_client_proves_the_password_from_the_named_variable(
    listener: ScramListener, fr: NodeConfig, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS, the node's client asks for SCRAM-SHA-512, names user nbx-FR and proves the
    password it read from $NBX_TEST_SCRAM: the listener accepts the proof; the password is in
    no repr of the settings."""
    monkeypatch.setenv("NBX_TEST_SCRAM", PASSWORD)
    settings = sasl(fr, pki, listener.port).kafka_settings()
    await _authenticate(settings)
    assert listener.mechanisms == ["SCRAM-SHA-512"]
    assert listener.users == ["nbx-FR"]
    assert listener.proofs_ok == [True]
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in repr(sasl(fr, pki, listener.port))


async def test_a_wrong_password_fails_in_one_line_that_does_not_hold_it(
    listener: ScramListener,
    fr: NodeConfig,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The listener refuses the proof of another password: the node's error is one line without
    the password, and nothing it logged or printed holds it."""
    wrong = "not-the-password-91c2"
    monkeypatch.setenv("NBX_TEST_SCRAM", wrong)
    settings = sasl(fr, pki, listener.port).kafka_settings()
    with pytest.raises(TransportError) as caught:
        await list_topics(settings)
    # the client's own attempt, then the diagnosis's login: both refused
    assert listener.users == ["nbx-FR", "nbx-FR"]
    assert listener.proofs_ok == [False, False]
    line = str(caught.value)
    assert line == (
        f"SASL with the Kafka broker at 127.0.0.1:{listener.port} failed: it refused user "
        "'nbx-FR' with SCRAM-SHA-512; check kafka.sasl_username and the password in the variable "
        "named by kafka.sasl_password_env"
    )
    out, err = capfd.readouterr()
    for text in (line, out, err):
        assert wrong not in text


async def test_a_mechanism_the_broker_does_not_offer_is_named(
    listener: ScramListener, fr: NodeConfig, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener offers SCRAM-SHA-512 only: a node configured for SCRAM-SHA-256 is told so."""
    monkeypatch.setenv("NBX_TEST_SCRAM", PASSWORD)
    config = sasl(fr, pki, listener.port)
    config = config.model_copy(
        update={"kafka": config.kafka.model_copy(update={"sasl_mechanism": "SCRAM-SHA-256"})}
    )
    with pytest.raises(TransportError) as caught:
        await list_topics(config.kafka_settings())
    assert listener.mechanisms == ["SCRAM-SHA-256", "SCRAM-SHA-256"]
    assert listener.users == []
    assert str(caught.value) == (
        f"SASL with the Kafka broker at 127.0.0.1:{listener.port} failed: it does not offer "
        "SCRAM-SHA-256; check kafka.sasl_mechanism"
    )


def test_the_password_comes_only_from_the_environment(
    fr: NodeConfig, pki: Pki, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the variable the config is refused naming the variable; node.toml has no key
    for the password itself (a ``sasl_password`` key is refused)."""
    monkeypatch.delenv("NBX_TEST_SCRAM", raising=False)
    with pytest.raises(ConfigError) as caught:
        sasl(fr, pki, 1).kafka_settings()
    assert str(caught.value) == (
        "kafka.security_protocol = SASL_SSL needs sasl_mechanism, sasl_username and the "
        "password in $NBX_TEST_SCRAM"
    )
    assert fr.source is not None
    text = fr.source.read_text().replace("[kafka]\n", f'[kafka]\nsasl_password = "{PASSWORD}"\n')
    node_toml = tmp_path / "node.toml"
    node_toml.write_text(text)
    with pytest.raises(ConfigError) as refused:
        NodeConfig.load(node_toml)
    assert "sasl_password" in str(refused.value)
    assert PASSWORD not in str(refused.value)
