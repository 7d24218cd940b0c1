"""Known answer for the ``response`` message (issue 19): FR's answer ``arrested`` to IT's
notice. A change to how a response is signed or packaged breaks this test; the stored frame
must keep opening and its header must keep validating as a :class:`Response`."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

from broker.envelope import open_package
from broker.keys import StaticDirectory
from broker.schemas.lifecycle import Response

from .vectors import RESPONSE, RESPONSE_MSG_ID, T0, fixed_keys, response

STORED = json.loads(RESPONSE.read_text())


def test_response_statement_signature_and_package_are_pinned() -> None:
    """Statement (header-only: the body under ``response``, the issuer in ``issuing_bureau``,
    no digests, one grant), deterministic signature, statement hash (base64url SHA-256 of the
    statement bytes) and IT's package are unchanged."""
    fresh = response(bytes.fromhex(STORED["frame_IT"]))
    assert fresh == STORED
    statement = STORED["statement"].encode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(statement).digest()).rstrip(b"=")
    assert STORED["statement_hash"] == expected.decode()
    parsed = json.loads(statement)
    assert (parsed["kind"], parsed["sender"], parsed["audience"]) == ("response", "FR", ["IT"])
    assert parsed["digests"] == []
    assert parsed["header"]["issuing_bureau"] == "IT"
    assert parsed["header"]["response"]["kind"] == "arrested"


def test_stored_response_frame_still_opens_and_validates() -> None:
    """The stored frame opens at IT with the fixed keys, carries no disclosure, and its body is
    a valid response (a photo by reference)."""
    keys = fixed_keys()
    it = keys["IT"]
    got = open_package(
        bytes.fromhex(STORED["frame_IT"]),
        topic="nbx.inbox.IT",
        recipient="IT",
        decryption_keys={it.encryption_key_id: it.encryption_key},
        directory=StaticDirectory([k.public() for k in keys.values()]),
        now=T0 + timedelta(minutes=1),
    )
    assert (got.kind, got.sender, got.msg_id) == ("response", "FR", RESPONSE_MSG_ID)
    assert dict(got.disclosed) == {}
    assert got.statement_hash == STORED["statement_hash"]
    body = Response.model_validate(got.header["response"])
    assert (body.kind, body.note) == ("arrested", "provisionally arrested")
    assert [a.uri for a in body.attachments] == ["urn:nbx:fr:evidence:1"]
