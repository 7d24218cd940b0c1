"""A peer's receipt reason is free text it chose: only known reason codes reach the logs
(docs/security/metadata.md, 10c)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker import devbroker
from broker.envelope import Grant, seal
from broker.ids import uuid7
from broker.keys.files import load_bureau_keys
from broker.logging import REASON_CODES, configure, reason_code
from tests.node.helpers import Net, wait_for
from tests.verify.support import produce_raw

pytestmark = pytest.mark.e2e

FREE_TEXT = "Subject Mario ROSSI born 1975-04-12 is a minor, call +39 06 1234"
CODE_SHAPED = "mario-rossi-1975"  # looks like a code, is not a known one


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    configure("DEBUG", stream=buf)
    try:
        yield buf
    finally:
        configure()


def test_reason_code_maps_unknown_text_to_other() -> None:
    """Known codes pass; free text, code-shaped unknown words and None do not."""
    assert {"schema", "declined-by-policy", "replay", "malformed"} <= REASON_CODES
    assert reason_code("declined-by-policy") == "declined-by-policy"
    assert reason_code(FREE_TEXT) == "other"
    assert reason_code(CODE_SHAPED) == "other"
    assert reason_code(None) is None


def test_free_text_under_a_code_key_never_reaches_a_log_line(log_lines: io.StringIO) -> None:
    """The allow-list processor replaces a value of a code key (reason, rule, kind...) that is
    not code-shaped, and of an id key that is not id-shaped, wherever it is logged from."""
    from broker.logging import get_logger

    get_logger().warning(
        "package.delivered",
        reason=FREE_TEXT,
        rule=FREE_TEXT,
        kind="publish",
        msg_id=FREE_TEXT,
        notice_id="IT-2026-000123",
        sender="IT",
    )
    line = json.loads(log_lines.getvalue().splitlines()[-1])
    assert line["reason"] == "other"
    assert line["rule"] == "other"
    assert line["msg_id"] == "other"  # a signer's free text posing as an id
    assert (line["kind"], line["notice_id"], line["sender"]) == ("publish", "IT-2026-000123", "IT")
    assert "ROSSI" not in log_lines.getvalue()


async def test_peer_receipt_free_text_reason_is_not_logged(
    fresh_broker: devbroker.DevBroker,
    idempotence_supported: bool,
    tmp_path: Path,
    log_lines: io.StringIO,
) -> None:
    """DE signs receipts to FR whose reasons are personal-looking free text and a code-shaped
    unknown word; FR stores them and logs ``receipt.received`` with reason ``other``: neither
    text appears in any log line."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("FR", "DE"), bootstrap, idempotence=idempotence_supported)
    de = load_bureau_keys(net.configs["DE"].keys.dir, "DE")
    fr = load_bureau_keys(net.configs["FR"].keys.dir, "FR")
    at = datetime.now(UTC).isoformat()
    bodies = [
        {
            "msg_id": uuid7(),
            "notice_id": f"FR-2026-R00{i}",
            "recipient": "DE",
            "status": "rejected",
            "reason": reason,
            "at": at,
        }
        for i, reason in enumerate((FREE_TEXT, CODE_SHAPED, "declined-by-policy"))
    ]
    sealed = seal(
        signer=de,
        kind="receipt",
        notice_id="receipts",
        notice_type="receipt",
        header={"receipts": bodies},
        units={},
        grants={"FR": Grant(frozenset(), (), "receipt")},
        handling="H0",
    )
    frame = sealed.package_for(
        "FR",
        topic="nbx.receipts.FR",
        recipient_kid=fr.encryption_key_id,
        recipient_key=fr.encryption_key.public_key(),
    )
    await net.ensure_topics("FR")
    await produce_raw(bootstrap, [("nbx.receipts.FR", b"k", frame, [])])
    await net.start("FR")
    try:
        daemon = net.daemon("FR")
        assert await wait_for(lambda: daemon.stats.receipts_received >= 3)
    finally:
        await net.stop()
    text = log_lines.getvalue()
    received = [
        json.loads(line)
        for line in text.splitlines()
        if line.startswith("{") and '"receipt.received"' in line
    ]
    assert sorted(r["reason"] for r in received) == ["declined-by-policy", "other", "other"]
    assert "ROSSI" not in text.upper()
    assert CODE_SHAPED not in text
