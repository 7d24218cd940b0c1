"""Roles and network rules in the signed directory (broker/keys/rules.py, docs/safeguards.md):
the rule model, the body's checks, the signature over the rules, the lookups every
:class:`~broker.keys.KeyLookup` answers, and a followed directory file picking up new rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import ValidationError

from broker.errors import KeyDirectoryError
from broker.keys import BureauKeys, Directory, DirectoryBody, NetworkRules, sign_directory
from broker.keys.bureau import StaticDirectory
from broker.keys.directory import DIRECTORY_DOMAIN
from broker.keys.directory_edit import (
    PublicDocument,
    add_bureau,
    empty_directory,
    reissue,
    set_rules,
)
from broker.keys.files import public_document
from broker.keys.rules import NOTICE_TYPES, PERSON_TARGETING
from broker.node.runtime import FileDirectory, Freshness
from broker.schemas.common import NoticeType
from broker.vocab import MessageKind, Role
from broker.wire.canonical import b64u, jcs

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)

#: the trust anchor and a directory listing FR, DE and the reviewer XR (serial 4)
Setup = tuple[ed25519.Ed25519PrivateKey, DirectoryBody]


def doc(bureau: str) -> PublicDocument:
    return PublicDocument.model_validate(public_document(BureauKeys.generate(bureau)))


@pytest.fixture
def setup() -> Setup:
    anchor = ed25519.Ed25519PrivateKey.generate()
    body = empty_directory(anchor.public_key(), T0)
    body = add_bureau(body, doc("FR"), name="NCB Paris", now=T0)
    body = add_bureau(body, doc("DE"), name="NCB Wiesbaden", now=T0)
    body = add_bureau(
        body, doc("XR"), name="Review body", now=T0, roles=(Role.MEMBER, Role.REVIEWER)
    )
    return anchor, body


def signed_raw(content: dict[str, Any], anchor: ed25519.Ed25519PrivateKey) -> bytes:
    """A directory document signed over ``content`` as given (no model checks on the way)."""
    signature = anchor.sign(DIRECTORY_DOMAIN + jcs(content))
    return json.dumps({"directory": content, "signature": b64u(signature)}).encode()


def test_notice_types_are_the_schema_notice_types() -> None:
    """The rules (keys layer) list the same notice types as the schemas' NoticeType."""
    assert tuple(t.value for t in NoticeType) == NOTICE_TYPES
    assert set(PERSON_TARGETING) <= set(NOTICE_TYPES)


def test_default_rules() -> None:
    """By default publish and update of red, blue, green notices and diffusions need review; no
    other kind or type does; a sender not listed is ``post``."""
    rules = NetworkRules()
    wanted = {
        (kind, t)
        for kind in (MessageKind.PUBLISH, MessageKind.UPDATE)
        for t in ("red", "blue", "green", "diffusion")
    }
    for kind in MessageKind:
        for notice_type in NOTICE_TYPES:
            assert rules.needs_review(kind, notice_type) == ((kind, notice_type) in wanted)
    assert rules.supervision_of("FR") == "post"
    assert rules.supervised() == []
    assert rules.is_default()


def test_rules_in_force_need_a_reviewer() -> None:
    """Without a reviewer nothing needs review and no sender is ``pre``; with one, the signed
    rules apply as they are."""
    rules = NetworkRules(supervision={"DE": "pre", "FR": "post"})
    assert rules.in_force(["XR"]) is rules
    assert rules.in_force(["XR"]).supervision_of("DE") == "pre"
    alone = rules.in_force([])
    assert not alone.needs_review("publish", "red")
    assert alone.supervision_of("DE") == "post"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ({"review_types": ["red", "pink"]}, "unknown notice type 'pink'"),
        ({"review_types": ["red", "red"]}, "a notice type is listed twice"),
        ({"review_kinds": ["cancel"]}, "message kind cancel cannot need review"),
        ({"review_kinds": ["sideways"]}, "Input should be"),
        ({"supervision": {"DE": "mid"}}, "Input should be 'post' or 'pre'"),
        ({"supervision": {"ZZ": "pre"}}, "unknown ISO 3166-1 alpha-2 country code 'ZZ'"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_rules_are_refused(content: dict[str, Any], error: str) -> None:
    """Each malformed rule set is refused with the reason."""
    with pytest.raises(ValidationError, match=error):
        NetworkRules.model_validate(content)


def test_a_directory_signed_with_rules_verifies_and_one_changed_byte_breaks_it(
    setup: Setup,
) -> None:
    """The rules are signed with the body: the directory verifies and gives its roles and rules;
    changing one byte of one rule (DE from pre to post) makes the signature fail."""
    anchor, body = setup
    body = set_rules(body, now=T0, review_types=["red", "diffusion"], supervise={"DE": "pre"})
    data = sign_directory(body, anchor)
    d = Directory.from_signed(data, anchor.public_key())
    assert d.roles("XR") == {"member", "reviewer"}
    assert d.roles("FR") == {"member"}
    assert d.roles("US") == frozenset()
    assert d.rules() == body.rules
    assert d.rules().supervision_of("DE") == "pre"
    assert d.rules().needs_review("update", "diffusion")
    assert not d.rules().needs_review("publish", "blue")

    assert data.count(b'"DE": "pre"') == 1
    tampered = data.replace(b'"DE": "pre"', b'"DE": "pos"')
    with pytest.raises(KeyDirectoryError) as info:
        Directory.from_signed(tampered, anchor.public_key())
    assert str(info.value) == (
        "directory: directory signature does not verify with the pinned trust anchor"
    )


def test_default_rules_are_not_encoded(setup: Setup) -> None:
    """A body with the default rules is encoded as before rules existed (no ``rules`` key):
    nodes that predate them still accept it; once changed the rules are in the signed body."""
    anchor, body = setup
    assert "rules" not in json.loads(sign_directory(body, anchor))["directory"]
    changed = set_rules(body, now=T0, supervise={"FR": "post"})
    content = json.loads(sign_directory(changed, anchor))["directory"]
    assert content["rules"] == {
        "review_kinds": ["publish", "update"],
        "review_types": ["red", "blue", "green", "diffusion"],
        "supervision": {"FR": "post"},
    }


def test_signed_but_inconsistent_roles_and_rules_are_refused(setup: Setup) -> None:
    """The anchor's signature does not make a bad body acceptable: a reviewer or oversight role
    on a country, supervision of an unlisted bureau, or ``pre`` with no reviewer listed."""
    anchor, body = setup
    base = body.to_json()

    def refused(content: dict[str, Any]) -> str:
        with pytest.raises(KeyDirectoryError) as info:
            Directory.from_signed(signed_raw(content, anchor), anchor.public_key())
        return str(info.value)

    for role in ("reviewer", "oversight"):
        bureaus = [dict(b) for b in base["bureaus"]]
        assert bureaus[0]["id"] == "DE"
        bureaus[0]["roles"] = ["member", role]
        assert refused({**base, "bureaus": bureaus}) == (
            f"directory: invalid directory: bureaus.0: DE cannot have the role {role}: "
            "only network bodies (XA..XZ) can"
        )
    assert refused({**base, "rules": {"supervision": {"US": "pre"}}}) == (
        "directory: invalid directory: the rules supervise US, which is not in the directory"
    )
    no_reviewer = [b for b in base["bureaus"] if b["id"] != "XR"]
    assert refused({**base, "bureaus": no_reviewer, "rules": {"supervision": {"DE": "pre"}}}) == (
        "directory: invalid directory: the rules put DE under pre supervision but no reviewer "
        "is listed"
    )


def test_a_directory_without_a_reviewer_requires_no_review(setup: Setup) -> None:
    """The signed rules say red notices need review, but no bureau is a reviewer: in force,
    nothing needs review."""
    anchor, body = setup
    content = body.to_json()
    content["bureaus"] = [b for b in content["bureaus"] if b["id"] != "XR"]
    d = Directory.from_signed(signed_raw(content, anchor), anchor.public_key())
    assert d.body.rules.needs_review("publish", "red")
    assert not d.rules().needs_review("publish", "red")


def test_set_rules_keeps_everything_else(setup: Setup) -> None:
    """A rules change is the next serial with the same bureaus and keys; the rules not named
    stay; unsupervise returns a bureau to post."""
    _anchor, body = setup
    first = set_rules(body, now=T0, review_kinds=["publish"], supervise={"DE": "pre"})
    assert first.serial == body.serial + 1
    assert first.bureaus == body.bureaus
    assert first.rules.review_kinds == (MessageKind.PUBLISH,)
    assert first.rules.review_types == PERSON_TARGETING
    second = set_rules(first, now=T0, review_types=[], supervise={"FR": "pre"})
    assert second.rules.supervision == {"DE": "pre", "FR": "pre"}
    assert second.rules.review_types == ()
    assert second.rules.review_kinds == (MessageKind.PUBLISH,)
    third = set_rules(second, now=T0, unsupervise=["DE"])
    assert third.rules.supervision == {"FR": "pre"}
    assert reissue(third, now=T0).rules == third.rules


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"supervise": {"US": "pre"}}, "cannot supervise US: not in directory serial 4"),
        ({"unsupervise": ["FR"]}, "cannot unsupervise FR: the rules do not supervise it"),
        (
            {"supervise": {"FR": "pre"}, "unsupervise": ["FR"]},
            "FR is both supervised and unsupervised: give one",
        ),
        ({"review_types": ["pink"]}, "invalid rules: unknown notice type 'pink'"),
        (
            {"review_kinds": ["cancel"]},
            "invalid rules: message kind cancel cannot need review (only publish, update)",
        ),
    ],
)
def test_set_rules_errors(setup: Setup, change: dict[str, Any], error: str) -> None:
    """Each bad change is refused with one line."""
    _anchor, body = setup
    with pytest.raises(KeyDirectoryError) as info:
        set_rules(body, now=T0, **change)
    assert str(info.value) == error


def test_add_refuses_a_body_role_on_a_country(setup: Setup) -> None:
    """Adding a country with a reviewer or oversight role is refused; an organisation may hold
    both."""
    _anchor, body = setup
    with pytest.raises(KeyDirectoryError) as info:
        add_bureau(body, doc("US"), name="NCB Washington", now=T0, roles=("member", "oversight"))
    assert str(info.value) == "US cannot have the role oversight: only network bodies (XA..XZ) can"
    both = add_bureau(
        body, doc("XO"), name="Oversight", now=T0, roles=("member", "reviewer", "oversight")
    )
    assert both.reviewers() == ["XO", "XR"]


def test_static_directory_roles_and_rules() -> None:
    """The in-memory lookup: members by default, the roles and rules given, checked like the
    signed directory's."""
    fr, xr = BureauKeys.generate("FR").public(), BureauKeys.generate("XR").public()
    plain = StaticDirectory([fr, xr])
    assert plain.roles("FR") == plain.roles("XR") == {"member"}
    assert plain.roles("US") == frozenset()
    assert plain.rules() == NetworkRules(review_kinds=())  # no reviewer: nothing needs review
    rules = NetworkRules(supervision={"FR": "pre"})
    reviewed = StaticDirectory([fr, xr], roles={"XR": ["member", "reviewer"]}, rules=rules)
    assert reviewed.roles("XR") == {"member", "reviewer"}
    assert reviewed.rules() is rules
    assert reviewed.rules().supervision_of("FR") == "pre"
    for kwargs, error in (
        ({"roles": {"FR": ["reviewer"]}}, "FR cannot have the role reviewer"),
        ({"roles": {"XO": ["oversight"]}}, "roles given for XO, which is not in the directory"),
        (
            {"rules": NetworkRules(supervision={"DE": "pre"})},
            "the rules supervise DE, which is not in the directory",
        ),
    ):
        with pytest.raises(KeyDirectoryError, match=error):
            StaticDirectory([fr, xr], **kwargs)


def test_a_followed_directory_file_brings_new_rules_and_roles(setup: Setup, tmp_path: Path) -> None:
    """A node's followed directory file answers roles() and rules() from the newest serial as
    soon as it re-reads the file (no restart)."""
    anchor, body = setup
    path = tmp_path / "directory.json"
    path.write_bytes(sign_directory(body, anchor))
    followed = FileDirectory(path, anchor.public_key(), Freshness(max_age=timedelta(days=30)))
    assert followed.rules().supervision_of("DE") == "post"
    assert followed.roles("XO") == frozenset()

    newer = set_rules(body, now=T0, supervise={"DE": "pre"})
    newer = add_bureau(newer, doc("XO"), name="Oversight", now=T0, roles=("member", "oversight"))
    path.write_bytes(sign_directory(newer, anchor))
    followed.check()
    assert followed.serial == newer.serial
    assert followed.rules().supervision_of("DE") == "pre"
    assert followed.roles("XO") == {"member", "oversight"}
