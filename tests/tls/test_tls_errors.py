"""A node that cannot connect over TLS says why in one line (broker.transport.tls): the broker's
certificate is not signed by the configured CA, has expired, or is not valid for the name
connected to; a broker asking for a client certificate got none, or one from a CA it does not
trust. Each case is real: stunnel presents the certificates and checks the client's
(tests/tls/conftest.py)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from broker.cli import EXIT_CODES, main
from broker.errors import TransportError
from broker.node import ConsumerDaemon, Publisher
from broker.node.config import NodeConfig
from broker.transport import tls
from broker.transport.admin import TopicManager
from broker.transport.kafka import list_topics
from tests.node.helpers import Net
from tests.tls.conftest import Pki, TlsFront

pytestmark = pytest.mark.broker

WRONG_CA = (
    "its certificate is not signed by the CA in kafka.ssl_cafile (unable to get local issuer "
    "certificate); set ssl_cafile to the network's CA certificate"
)
EXPIRED = "its certificate has expired; the broker's operator must renew it"
NAME = (
    "its certificate is not valid for the name '127.0.0.1'; connect by a name the certificate "
    "lists (kafka.bootstrap)"
)
NO_CLIENT_CERT = (
    "it requires a client certificate; set kafka.ssl_certfile and kafka.ssl_keyfile "
    "(nbx deploy certs)"
)
FOREIGN_CLIENT_CERT = (
    "it refused this node's client certificate (kafka.ssl_certfile): not issued by a CA the "
    "broker trusts"
)
NOT_TLS = "it did not answer in TLS; check kafka.security_protocol for this listener"

#: (stunnel service, CA file, client certificate name or None, the reason)
CASES = {
    "wrong-ca": ("tls", "other-ca", None, WRONG_CA),
    "expired-server-certificate": ("expired", "ca", None, EXPIRED),
    "hostname-mismatch": ("badname", "ca", None, NAME),
    "missing-client-certificate": ("mtls", "ca", None, NO_CLIENT_CERT),
    "foreign-client-certificate": ("mtls", "ca", "foreign-FR", FOREIGN_CLIENT_CERT),
}


@pytest.fixture(scope="module")
def fr(tmp_path_factory: pytest.TempPathFactory, tls_front: TlsFront) -> NodeConfig:
    """FR's provisioned node configuration (its bootstrap replaced per case)."""
    folder = tmp_path_factory.mktemp("net")
    net = Net(folder, ("FR", "IT"), tls_front.bootstrap("tls"), idempotence=False)
    return net.configs["FR"]


def configured(
    fr: NodeConfig, pki: Pki, bootstrap: str, cafile: str, client: str | None
) -> NodeConfig:
    """``fr`` over TLS to ``bootstrap`` trusting ``cafile``.pem, with ``client``'s certificate."""
    kafka: dict[str, Any] = {
        "bootstrap": bootstrap,
        "security_protocol": "SSL",
        "ssl_cafile": pki.path(f"{cafile}.pem"),
        "require_log_append_time": False,
    }
    if client is not None:
        kafka |= {
            "ssl_certfile": pki.path(f"{client}.pem"),
            "ssl_keyfile": pki.path(f"{client}.key"),
        }
    return fr.model_copy(update={"kafka": fr.kafka.model_copy(update=kafka)})


@pytest.mark.parametrize("case", CASES)
async def test_each_tls_failure_is_one_line_naming_its_cause(
    case: str, fr: NodeConfig, pki: Pki, tls_front: TlsFront
) -> None:
    """The publisher, the topic manager (the daemon's first call) and the topic listing (the
    directory and quarantine readers) each fail with the one line for the case."""
    service, cafile, client, why = CASES[case]
    bootstrap = tls_front.bootstrap(service)
    config = configured(fr, pki, bootstrap, cafile, client)
    line = f"TLS with the Kafka broker at {bootstrap} failed: {why}"
    with pytest.raises(TransportError) as caught:
        async with Publisher.from_config(config):
            pass
    assert str(caught.value) == line
    topics = TopicManager(config.kafka_settings())
    try:
        with pytest.raises(TransportError) as caught:
            await topics.ensure(["nbx.inbox.FR"])
        assert str(caught.value) == line
    finally:
        await topics.close()
    with pytest.raises(TransportError) as caught:
        await list_topics(config.kafka_settings())
    assert str(caught.value) == line


async def test_the_daemon_gives_up_with_the_line(
    fr: NodeConfig, pki: Pki, tls_front: TlsFront
) -> None:
    """``nbx consume --connect-timeout``: the daemon retries, then stops with the TLS line."""
    bootstrap = tls_front.bootstrap("mtls")
    daemon = ConsumerDaemon.from_config(configured(fr, pki, bootstrap, "ca", "foreign-FR"))
    try:
        with pytest.raises(TransportError) as caught:
            await daemon.run(connect_timeout_s=0.1)
    finally:
        daemon.sink.close()
    assert str(caught.value) == (
        f"TLS with the Kafka broker at {bootstrap} failed: {FOREIGN_CLIENT_CERT}"
    )


async def test_the_same_node_connects_when_its_settings_are_right(
    fr: NodeConfig, pki: Pki, tls_front: TlsFront
) -> None:
    """The control: the network CA over ``tls``, and the bureau's certificate over ``mtls``."""
    for service, client in (("tls", None), ("mtls", "nbx-FR")):
        config = configured(fr, pki, tls_front.bootstrap(service), "ca", client)
        assert isinstance(await list_topics(config.kafka_settings()), set)
    assert (
        tls.diagnose(
            ssl.create_default_context(cafile=pki.path("ca.pem")),
            tls_front.bootstrap("tls"),
            client_cert=False,
        )
        is None
    )


def test_nbx_prints_the_line_and_exits_with_code_1(
    fr: NodeConfig, pki: Pki, tls_front: TlsFront, tmp_path: Path
) -> None:
    """``nbx directory fetch --config node.toml`` where node.toml names the broker behind the
    expired certificate: the one line ``nbx: error: TLS with ...`` on stderr, exit 1."""
    bootstrap = tls_front.bootstrap("expired")
    node_toml = tmp_path / "node.toml"
    node_toml.write_text(
        f'bureau = "FR"\n[keys]\ndir = "keys"\n[trust]\nanchor = "{fr.trust.anchor}"\n'
        f'directory = "topic"\n[kafka]\nbootstrap = "{bootstrap}"\nsecurity_protocol = "SSL"\n'
        f'ssl_cafile = "{pki.path("ca.pem")}"\n[policy]\ndir = "p"\n'
        '[sink]\nurl = "sqlite:///FR.sqlite"\n'
    )
    result = CliRunner().invoke(
        main,
        ["directory", "fetch", str(tmp_path / "d.json"), "--anchor", str(fr.trust.anchor),
         "--config", str(node_toml)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert EXIT_CODES[1].startswith("an error")
    assert (
        result.stderr == f"nbx: error: TLS with the Kafka broker at {bootstrap} failed: {EXPIRED}\n"
    )
    assert result.stdout == ""


def test_reason_is_none_for_what_is_not_tls() -> None:
    """A refused connection or a timeout is not a TLS failure: the generic line stays."""
    assert tls.reason(ConnectionRefusedError(), "h", client_cert=False) is None
    assert tls.reason(TimeoutError(), "h", client_cert=False) is None
    odd = ssl.SSLError(1, "x")
    odd.reason = "SOMETHING_ELSE"
    assert tls.reason(odd, "h", client_cert=False) == "SOMETHING_ELSE"
    assert tls.first_server("[::1]:9093,b:1") == ("::1", 9093)
    # a plaintext listener (tansu itself waits for the rest of what it takes for a huge frame,
    # so the real case ends in a timeout: generic line); a broker that answers with an alert
    plain = ssl.SSLError(1, "x")
    plain.reason = "WRONG_VERSION_NUMBER"
    assert tls.reason(plain, "h", client_cert=False) == NOT_TLS
    expired_client = ssl.SSLError(1, "x")
    expired_client.reason = "SSLV3_ALERT_CERTIFICATE_EXPIRED"
    assert tls.reason(expired_client, "h", client_cert=True) == (
        "it refused this node's client certificate (kafka.ssl_certfile): it has expired"
    )
    not_yet = ssl.SSLCertVerificationError(1, "x")
    not_yet.verify_code = 9
    assert tls.reason(not_yet, "h", client_cert=False) == (
        "its certificate is not valid yet; check the clocks of broker and node"
    )
