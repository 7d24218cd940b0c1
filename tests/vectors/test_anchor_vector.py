"""Known answer for anchor rotation: a change to how an anchor link is encoded or signed, or to
how the directory carries ``successor`` and ``anchor_chain``, breaks this test."""

from __future__ import annotations

import json

from broker.keys import Directory
from broker.keys.anchor import ANCHOR_LINK_DOMAIN, AnchorLink, kid_of

from .anchor_vector import ANCHOR_CHAIN, anchor_chain, fixed_successor
from .vectors import fixed_anchor

STORED = json.loads(ANCHOR_CHAIN.read_text())


def test_the_link_and_both_directories_are_pinned() -> None:
    assert anchor_chain() == STORED
    link = AnchorLink.model_validate(STORED["link"])
    assert link.verifies()
    signed = bytes.fromhex(STORED["link_signed_bytes"])
    assert signed.startswith(ANCHOR_LINK_DOMAIN)
    assert json.loads(signed[len(ANCHOR_LINK_DOMAIN) :]) == {
        k: v for k, v in STORED["link"].items() if k != "signature"
    }


def test_the_stored_directories_verify_along_the_chain() -> None:
    """A node pinned to the old anchor accepts the announcement (signed by it) and the take-over
    (signed by the successor, through the stored chain)."""
    pinned = fixed_anchor().public_key()
    announced = Directory.from_signed(STORED["announced"].encode(), pinned)
    assert announced.serial == 4
    assert announced.body.successor == AnchorLink.model_validate(STORED["link"])
    taken = Directory.from_signed(STORED["taken_over"].encode(), pinned)
    assert taken.serial == 5
    assert taken.anchor is not None
    assert kid_of(taken.anchor) == kid_of(fixed_successor().public_key())
    assert [link.model_dump(mode="json") for link in taken.links] == [STORED["link"]]
    assert taken.bureau_ids() == ["FR", "IT"]
