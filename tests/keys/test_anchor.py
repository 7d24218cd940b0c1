"""Anchor rotation: anchor links, the chain a pinned node follows, and every way to break it
(docs/security/anchor-rotation.md). Pure verification, no files, no broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.errors import KeyDirectoryError
from broker.keys import BureauKeys, Directory, DirectoryBody, sign_directory
from broker.keys.anchor import AnchorLink, kid_of, make_link, walk
from broker.keys.directory_edit import (
    PublicDocument,
    add_bureau,
    announce_successor,
    empty_directory,
    reissue,
    take_over,
)
from broker.keys.directory_topic import Found
from broker.keys.files import public_document
from broker.wire.canonical import b64u

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
Key = ed25519.Ed25519PrivateKey


def new_key() -> Key:
    return ed25519.Ed25519PrivateKey.generate()


class Chain:
    """Anchors A, B, C and the serials of one directory across two rotations:
    serial 2 (A, FR listed), 3 (A announces B), 4 (B takes over), 5 (B announces C), 6 (C)."""

    def __init__(self) -> None:
        self.a, self.b, self.c = new_key(), new_key(), new_key()
        body = empty_directory(self.a.public_key(), T0)
        doc = PublicDocument.model_validate(public_document(BureauKeys.generate("FR")))
        self.s2 = add_bureau(body, doc, name="FR", now=T0)
        self.ab = make_link(self.a, self.b.public_key(), T0)
        self.s3 = announce_successor(self.s2, self.ab, now=T0)
        self.s4 = take_over(self.s3, self.b.public_key(), now=T0)
        self.bc = make_link(self.b, self.c.public_key(), T0)
        self.s5 = announce_successor(self.s4, self.bc, now=T0)
        self.s6 = take_over(self.s5, self.c.public_key(), now=T0)


@pytest.fixture
def chain() -> Chain:
    return Chain()


def pinned(key: Key) -> ed25519.Ed25519PublicKey:
    return key.public_key()


def forged_signature(body: DirectoryBody, signer: Key) -> bytes:
    """``body`` signed by ``signer`` whatever anchor it names (sign_directory refuses that)."""
    from broker.keys.directory import DIRECTORY_DOMAIN
    from broker.wire.canonical import jcs

    content = body.to_json()
    signature = signer.sign(DIRECTORY_DOMAIN + jcs(content))
    return json.dumps({"directory": content, "signature": b64u(signature)}).encode()


def test_a_link_verifies_with_its_outgoing_anchor_only(chain: Chain) -> None:
    assert chain.ab.verifies()
    assert (chain.ab.from_kid, chain.ab.to_kid) == (
        kid_of(pinned(chain.a)),
        kid_of(pinned(chain.b)),
    )
    changed = chain.ab.model_copy(update={"at": T0 + timedelta(seconds=1)})
    assert not changed.verifies()
    with pytest.raises(KeyDirectoryError, match="is the current anchor"):
        make_link(chain.a, chain.a.public_key(), T0)
    with pytest.raises(ValueError, match="does not match its public key"):
        AnchorLink.model_validate({**chain.ab.model_dump(), "to_kid": chain.ab.from_kid})


def test_the_omitted_fields_keep_old_directories_byte_identical(chain: Chain) -> None:
    """A body without successor and chain is encoded (and signed) exactly as before: the fields
    are absent, not null, so existing signatures and the test vectors stay valid."""
    data = sign_directory(chain.s2, chain.a)
    assert b"successor" not in data
    assert b"anchor_chain" not in data
    assert set(json.loads(data)["directory"]) == {
        "format",
        "serial",
        "issued_at",
        "anchor_kid",
        "bureaus",
    }
    loaded = Directory.from_signed(data, pinned(chain.a))
    assert loaded.links == ()
    assert loaded.anchor is not None
    assert kid_of(loaded.anchor) == chain.s2.anchor_kid
    assert loaded.body == chain.s2


def test_a_node_pinned_to_the_old_anchor_follows_the_chain(chain: Chain) -> None:
    """The announcing directory verifies with A; the successor's directory verifies with A
    through the chain A -> B and records B as its anchor; after two rotations a node still pinned
    to A follows A -> B -> C, and a node pinned to B passes over the older link."""
    announced = Directory.from_signed(sign_directory(chain.s3, chain.a), pinned(chain.a))
    assert announced.body.successor == chain.ab
    assert announced.links == ()

    taken = Directory.from_signed(sign_directory(chain.s4, chain.b), pinned(chain.a))
    assert taken.anchor is not None
    assert kid_of(taken.anchor) == kid_of(pinned(chain.b)) == taken.body.anchor_kid
    assert taken.links == (chain.ab,)
    assert taken.body.successor is None
    assert taken.body.anchor_chain == (chain.ab,)
    assert [b.id for b in taken.body.bureaus] == ["FR"]

    last = sign_directory(chain.s6, chain.c)
    assert Directory.from_signed(last, pinned(chain.a)).links == (chain.ab, chain.bc)
    assert Directory.from_signed(last, pinned(chain.b)).links == (chain.bc,)
    assert Directory.from_signed(last, pinned(chain.c)).links == ()


def test_a_successor_nobody_announced_is_refused(chain: Chain) -> None:
    """A directory signed by a key the pinned anchor never named: without a chain, with a chain
    from another anchor, or with a chain that does not reach the signer."""
    rogue = new_key()
    own = reissue(chain.s2, now=T0).model_copy(update={"anchor_kid": kid_of(rogue.public_key())})
    a, r = kid_of(pinned(chain.a)), kid_of(rogue.public_key())
    expected = (
        f"net/directory.json: directory signature does not verify with the pinned trust anchor "
        f"{a}; it is signed by anchor {r}, which {a} did not announce as its successor"
    )
    with pytest.raises(KeyDirectoryError) as caught:
        Directory.from_signed(
            sign_directory(own, rogue), pinned(chain.a), source="net/directory.json"
        )
    assert str(caught.value) == expected

    # a chain X -> rogue, signed correctly by X: X is not the pinned anchor
    x = new_key()
    foreign = make_link(x, rogue.public_key(), T0)
    body = own.model_copy(update={"anchor_chain": (foreign,)})
    with pytest.raises(KeyDirectoryError) as caught:
        Directory.from_signed(
            sign_directory(body, rogue), pinned(chain.a), source="net/directory.json"
        )
    assert str(caught.value) == expected

    # the genuine link A -> B, but signed by the rogue: the chain does not reach it
    body = own.model_copy(update={"anchor_chain": (chain.ab,)})
    with pytest.raises(KeyDirectoryError) as caught:
        Directory.from_signed(
            forged_signature(body, rogue), pinned(chain.a), source="net/directory.json"
        )
    assert str(caught.value) == expected


def test_a_forged_link_is_refused(chain: Chain) -> None:
    """A link that claims to come from the pinned anchor but was signed by another key."""
    rogue = new_key()
    genuine = make_link(chain.a, rogue.public_key(), T0)
    forged = genuine.model_copy(update={"signature": b64u(rogue.sign(genuine.signed_content()))})
    body = reissue(chain.s2, now=T0).model_copy(
        update={"anchor_kid": kid_of(rogue.public_key()), "anchor_chain": (forged,)}
    )
    a, r = kid_of(pinned(chain.a)), kid_of(rogue.public_key())
    with pytest.raises(KeyDirectoryError) as caught:
        Directory.from_signed(sign_directory(body, rogue), pinned(chain.a), source="dir.json")
    assert str(caught.value) == (
        f"dir.json: the anchor link {a} -> {r} does not verify with anchor {a} (forged)"
    )
    with pytest.raises(KeyDirectoryError, match="forged"):
        walk(pinned(chain.a), [forged], "serial-file")


def test_a_directory_signed_by_the_successor_but_not_by_the_chain_end(chain: Chain) -> None:
    """The chain leads from A to B but the signature is not B's."""
    tampered = json.loads(sign_directory(chain.s4, chain.b))
    tampered["directory"]["bureaus"][0]["name"] = "EVIL"
    a, b = kid_of(pinned(chain.a)), kid_of(pinned(chain.b))
    with pytest.raises(KeyDirectoryError) as caught:
        Directory.from_signed(json.dumps(tampered).encode(), pinned(chain.a), source="d.json")
    assert str(caught.value) == (
        f"d.json: directory signature does not verify with anchor {b}, the successor of the "
        f"pinned trust anchor {a}"
    )


def test_a_broken_or_misdirected_chain_makes_the_body_invalid(chain: Chain) -> None:
    """A chain whose links do not connect, or that ends elsewhere than the signer, and a successor
    link from another anchor: the body is invalid however it is signed."""
    content = chain.s6.to_json()
    content["anchor_chain"] = [chain.bc.model_dump(mode="json"), chain.ab.model_dump(mode="json")]
    with pytest.raises(ValueError, match="the anchor chain breaks between"):
        DirectoryBody.model_validate(content)
    content = chain.s4.to_json()
    content["anchor_chain"] = [chain.ab.model_dump(mode="json"), chain.bc.model_dump(mode="json")]
    with pytest.raises(ValueError, match="the anchor chain ends at"):
        DirectoryBody.model_validate(content)
    content = chain.s2.to_json()
    content["successor"] = chain.bc.model_dump(mode="json")
    with pytest.raises(ValueError, match="is not from the directory's anchor"):
        DirectoryBody.model_validate(content)


def test_a_forged_successor_link_in_an_announcement_is_refused(chain: Chain) -> None:
    """The anchor signs a directory whose successor link was not made by it (copied, altered)."""
    bad = chain.ab.model_copy(update={"at": T0 + timedelta(days=1)})
    body = chain.s3.model_copy(update={"successor": bad})
    with pytest.raises(KeyDirectoryError) as caught:
        Directory.from_signed(sign_directory(body, chain.a), pinned(chain.a), source="d.json")
    assert str(caught.value) == (
        f"d.json: the successor link {bad.name} does not verify with anchor {bad.from_kid} (forged)"
    )


def test_a_predecessor_signed_directory_is_refused_after_the_switch(chain: Chain) -> None:
    """Once a node pinned B, a directory the old anchor A signs (even a higher serial) does not
    verify: the old key is dead for it."""
    late = reissue(chain.s5, now=T0).model_copy(
        update={"anchor_kid": kid_of(pinned(chain.a)), "successor": None, "anchor_chain": ()}
    )
    with pytest.raises(KeyDirectoryError) as caught:
        Directory.from_signed(sign_directory(late, chain.a), pinned(chain.b), source="d.json")
    assert str(caught.value).startswith(
        f"d.json: directory signature does not verify with the pinned trust anchor "
        f"{kid_of(pinned(chain.b))}; it is signed by anchor {kid_of(pinned(chain.a))}"
    )


def test_take_over_needs_the_announced_successor(chain: Chain) -> None:
    rogue = new_key()
    with pytest.raises(KeyDirectoryError) as caught:
        take_over(chain.s3, rogue.public_key(), now=T0)
    assert str(caught.value) == (
        f"the key {kid_of(rogue.public_key())} is neither the anchor {chain.s3.anchor_kid} of "
        f"directory serial 3 nor its announced successor {chain.ab.to_kid}"
    )
    with pytest.raises(KeyDirectoryError, match="names no successor anchor: nothing to take over"):
        take_over(chain.s2, chain.b.public_key(), now=T0)
    with pytest.raises(KeyDirectoryError, match="not from the directory's anchor"):
        announce_successor(chain.s4, chain.ab, now=T0)
    # edits after an announcement keep it; edits after a take-over keep the chain
    assert reissue(chain.s3, now=T0).successor == chain.ab
    assert reissue(chain.s4, now=T0).anchor_chain == (chain.ab,)


def test_one_read_of_the_topic_follows_a_rotation_it_meets(chain: Chain) -> None:
    """Records in log order: A's serials, B's take-over, then a later record signed by A (the
    old key used after the switch): the read pins B at the take-over and skips A's record."""
    found = Found()
    values = [
        sign_directory(chain.s2, chain.a),
        sign_directory(chain.s3, chain.a),
        sign_directory(chain.s4, chain.b),
        sign_directory(
            reissue(reissue(chain.s4, now=T0), now=T0).model_copy(
                update={"anchor_kid": kid_of(pinned(chain.a)), "anchor_chain": ()}
            ),
            chain.a,
        ),
        sign_directory(chain.s6, chain.c),
    ]
    for offset, value in enumerate(values):
        found.consider(value, pinned(chain.a), 0, partition=0, offset=offset, quiet=True)
    assert found.best is not None
    assert found.best.serial == 6
    assert found.best.links == (chain.ab, chain.bc)
    assert found.anchor is not None
    assert kid_of(found.anchor) == kid_of(pinned(chain.c))


def test_stored_links_are_parsed_strictly(chain: Chain) -> None:
    """Links read back from a serial file: a list of valid links, else one line naming it."""
    from broker.keys.anchor import parse_links

    assert parse_links([chain.ab.model_dump(mode="json")], "f") == (chain.ab,)
    with pytest.raises(KeyDirectoryError) as caught:
        parse_links([{**chain.ab.model_dump(mode="json"), "to_public": "AAAA"}], "f")
    assert str(caught.value) == (
        f"f: invalid anchor link: anchor link: key id {chain.ab.to_kid} does not match its "
        "public key"
    )
    walked = walk(pinned(chain.b), [chain.ab, chain.bc], "f")
    assert (walked.kid, walked.links) == (kid_of(pinned(chain.c)), (chain.bc,))


def test_a_read_of_the_topic_skips_a_take_over_whose_announcement_was_replaced(
    chain: Chain,
) -> None:
    """In log order: A names B (serial 3), A names C instead (serial 4), B takes over (serial 5,
    from the replaced announcement), C takes over (serial 5): the read skips B's directory
    (unannounced-anchor) and ends on C's."""
    from structlog.testing import capture_logs

    to_c = make_link(chain.a, chain.c.public_key(), T0)
    names_c = announce_successor(chain.s3, to_c, now=T0)
    by_b = take_over(reissue(chain.s3, now=T0), chain.b.public_key(), now=T0)
    by_c = take_over(names_c, chain.c.public_key(), now=T0)
    found = Found()
    values = [
        sign_directory(chain.s3, chain.a),
        sign_directory(names_c, chain.a),
        sign_directory(by_b, chain.b),
        sign_directory(by_c, chain.c),
    ]
    with capture_logs() as logs:
        for offset, value in enumerate(values):
            found.consider(value, pinned(chain.a), 0, partition=0, offset=offset, quiet=True)
    assert found.best is not None
    assert found.best.serial == 5
    assert found.best.links == (to_c,)
    assert [e for e in logs if e["event"] == "directory.skipped"] == [
        {
            "event": "directory.skipped",
            "log_level": "warning",
            "topic": "nbx.directory",
            "partition": 0,
            "offset": 2,
            "serial": 5,
            "anchor_kid": kid_of(pinned(chain.b)),
            "reason": "unannounced-anchor",
        }
    ]
