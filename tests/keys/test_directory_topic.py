"""The directory on the compacted ``nbx.directory`` topic, against the real test broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.errors import KeyDirectoryError
from broker.keys import BureauKeys, sign_directory
from broker.keys.directory_edit import PublicDocument, add_bureau, empty_directory
from broker.keys.directory_topic import fetch_directory, publish_directory
from broker.keys.files import public_document
from broker.transport import KafkaSettings

pytestmark = pytest.mark.e2e


async def test_fetch_takes_highest_verified_serial(kafka_bootstrap: str) -> None:
    settings = KafkaSettings(bootstrap=kafka_bootstrap, enable_idempotence=False)
    """Newest serial wins; a forged record and a replayed older serial are ignored; a node
    already holding a newer serial gets an error rather than a rollback."""
    anchor = ed25519.Ed25519PrivateKey.generate()
    now = datetime.now(UTC)
    body = empty_directory(anchor.public_key(), now)
    serials = []
    for cc in ("FR", "DE"):
        doc = PublicDocument.model_validate(public_document(BureauKeys.generate(cc)))
        body = add_bureau(body, doc, name=cc, now=now)
        serials.append(sign_directory(body, anchor))
    forged = json.loads(serials[1])
    forged["directory"]["serial"] = 99
    for signed in (serials[0], serials[1], json.dumps(forged).encode(), serials[0]):
        await publish_directory(settings, signed)
    got = await fetch_directory(settings, anchor.public_key(), min_serial=0)
    assert got.serial == body.serial == 3
    assert got.bureau_ids() == ["DE", "FR"]
    with pytest.raises(
        KeyDirectoryError, match=r"newest directory .* is serial 3, older than serial 4"
    ):
        await fetch_directory(settings, anchor.public_key(), min_serial=4)
