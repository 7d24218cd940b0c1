"""Nodes exchange notices over TLS, with the broker's certificate verified, through stunnel in
front of tansu (tests/tls/conftest.py): the directory on ``nbx.directory``, publish, consume and
receipts; then the same with mutual TLS, each bureau presenting its client certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker.keys.directory_topic import publish_directory
from broker.node.config import NodeConfig
from tests.audit_access import READ
from tests.node.helpers import Net, example, wait_for
from tests.tls.conftest import Pki, TlsFront

pytestmark = pytest.mark.broker


def over_tls(config: NodeConfig, pki: Pki, *, client_cert: bool = False) -> NodeConfig:
    """``config`` connecting with ``security_protocol = "SSL"`` and the test CA (with the
    bureau's own client certificate if ``client_cert``); the directory read from its topic;
    tansu neither stamps records (LogAppendTime) nor answers empty fetches at once."""
    kafka: dict[str, Any] = {
        "security_protocol": "SSL",
        "ssl_cafile": pki.path("ca.pem"),
        "require_log_append_time": False,
        "pace_empty_fetches": False,
    }
    if client_cert:
        name = f"nbx-{config.bureau}"
        kafka |= {"ssl_certfile": pki.path(f"{name}.pem"), "ssl_keyfile": pki.path(f"{name}.key")}
    return config.model_copy(
        update={
            "kafka": config.kafka.model_copy(update=kafka),
            "trust": config.trust.model_copy(update={"directory": "topic"}),
        }
    )


async def exchange_over(service: str, tls_front: TlsFront, pki: Pki, tmp_path: Path) -> None:
    """FR publishes two notices to IT and ES through ``service``; each recipient stores them,
    FR's daemon receives their receipts; the directory comes from ``nbx.directory``."""
    bureaus = ("FR", "IT", "ES")
    net = Net(tmp_path, bureaus, tls_front.bootstrap(service), idempotence=False)
    mtls = service == "mtls"
    net.configs = {cc: over_tls(c, pki, client_cert=mtls) for cc, c in net.configs.items()}
    settings = net.configs["FR"].kafka_settings()
    assert settings.security_protocol == "SSL"
    assert settings.ssl_cafile == str(pki.path("ca.pem"))
    await publish_directory(settings, (tmp_path / "directory.json").read_bytes())
    await net.start(*bureaus)
    try:
        notices = [
            example("red", issuing_bureau="FR", notice_id=f"FR-2026-{i:04d}") for i in range(2)
        ]
        for notice in notices:
            result = await net.publish("FR", notice, ["IT", "ES"])
            assert not result.failed, result.failed
            assert {o.status for o in result.outcomes} == {"sent"}

        def receipts() -> dict[tuple[str, str], set[str]]:
            """(notice id, recipient) -> the receipt statuses FR's store holds."""
            return {
                (n.notice_id, row["recipient"]): {
                    x["status"] for m in row["messages"] for x in m["receipts"]
                }
                for n in notices
                for row in net.daemon("FR").sink.status(n.notice_id)
            }

        expected = {(n.notice_id, cc): {"delivered"} for n in notices for cc in ("IT", "ES")}

        def settled() -> bool:
            delivered = [net.daemon(cc).stats.delivered for cc in ("IT", "ES")]
            return delivered == [len(notices)] * 2 and receipts() == expected

        assert await wait_for(settled, timeout_s=60), tls_front.log_text()[-3000:]
        for cc in ("IT", "ES"):
            for notice in notices:
                stored = net.daemon(cc).sink.notice(notice.notice_id, READ)
                assert stored is not None
                assert stored["sender"] == "FR"
    finally:
        await net.stop()
    # every connection went through stunnel's TLS service: the clients never knew another port
    log = tls_front.log_text()
    assert f"Service [{service}] accepted connection" in log
    if mtls:
        for cc in bureaus:
            assert f"Certificate accepted at depth=0: O=NBX, CN=nbx-{cc}" in log


async def test_publish_consume_receipts_and_directory_over_tls(
    tls_front: TlsFront, pki: Pki, tmp_path: Path
) -> None:
    """Over TLS with server verification: the directory topic, publish, consume, receipts."""
    await exchange_over("tls", tls_front, pki, tmp_path)


async def test_publish_consume_receipts_and_directory_over_mutual_tls(
    tls_front: TlsFront, pki: Pki, tmp_path: Path
) -> None:
    """Over mutual TLS: the broker requires each bureau's client certificate (CN nbx-<CC>) from
    the network CA; the same exchange passes and stunnel logs every bureau's certificate."""
    await exchange_over("mtls", tls_front, pki, tmp_path)
