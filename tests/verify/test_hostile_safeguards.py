"""Validly signed hostile safeguard messages (review, block, unblock, delete) on the real broker.

The attacker holds a signing key of the network (a member bureau, the reviewer or the oversight
body: an insider, or a thief) and writes straight into FR's inbox: attestations and decisions
from a bureau without the role, attestations of a statement other than the stored one, generated
malformed bodies signed by the right body, every genuine record of the inbox written again
(among them the v1 approval of a notice since updated), and forged reviews and decisions (the
body changed under the genuine signature, or signed with a member's key in the reviewer's or
oversight body's name). Each record must be quarantined with
exactly the reason its attack calls for (matched per record through the quarantine's
``nbx-source``), the daemon never stops, and the genuine notices keep the states the genuine
safeguard messages gave them (the replayed v1 approval leaves the updated notice pending).
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from hypothesis import strategies as st

from broker import devbroker
from broker.envelope import Grant, open_package, seal
from broker.errors import EnvelopeRejected
from broker.keys import BureauKeys
from broker.keys.bureau import StaticDirectory
from broker.keys.files import load_bureau_keys
from broker.node import Publisher, PublishResult
from broker.node.consumer import REASON_HEADER, SOURCE_HEADER
from broker.schemas.safeguards import Block, Delete, Review, Unblock
from broker.vocab import Ground, MessageKind, NoticeState, Reason
from broker.wire.canonical import b64u, jcs
from tests.audit_access import READ
from tests.node.helpers import Net, wait_for
from tests.verify.support import (
    COUNTS,
    KNOWN_REASONS,
    TALLY,
    canary_notice,
    decrypt_as,
    encrypt_to,
    generate,
    read_all,
    resigned,
    settle,
    statement_of,
)
from tests.verify.test_hostile_signed import HOSTILE

# Not marked e2e: the suite runs once, on noida-db, in `make unit` (`make verify`: slow profile).

BUREAUS = ("IT", "FR", "XR", "XO")
ROLES = {"XR": ["reviewer"], "XO": ["oversight"]}
FACTS = (MessageKind.REVIEW, MessageKind.BLOCK, MessageKind.UNBLOCK, MessageKind.DELETE)
MODELS: dict[str, Any] = {
    MessageKind.REVIEW: Review,
    MessageKind.BLOCK: Block,
    MessageKind.UNBLOCK: Unblock,
    MessageKind.DELETE: Delete,
}
#: who may send each kind, and who may not (IT is a member, XR the reviewer, XO oversight)
ENTITLED = {MessageKind.REVIEW: "XR"} | dict.fromkeys(FACTS[1:], "XO")
IMPOSTORS = {MessageKind.REVIEW: ("IT", "XO", "FR")} | dict.fromkeys(FACTS[1:], ("IT", "XR", "FR"))
HASH = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    min_size=43,
    max_size=43,
)
GROUNDS = st.lists(st.sampled_from(list(Ground)), min_size=1, max_size=3, unique=True)

#: a wrong-role attack: (kind, impostor index, notice index)
ROLE_ATTACK = st.tuples(st.sampled_from(FACTS), st.integers(0, 2), st.integers(0, 2))
#: an attestation of another statement: (notice index, hash, refused?, grounds)
MISMATCH = st.tuples(st.integers(0, 2), HASH, st.booleans(), GROUNDS)
#: a malformed body signed by the right body: (kind, notice index, drops, sets)
MALFORMED = st.tuples(
    st.sampled_from(FACTS),
    st.integers(0, 2),
    st.lists(st.integers(0, 5), max_size=2),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "subject_sender",
                    "subject_msg_id",
                    "statement_hash",
                    "decision",
                    "grounds",
                    "reason",
                    "case_ref",
                ]
            )
            | st.text(max_size=12),
            HOSTILE,
        ),
        max_size=3,
    ),
)


def _keys(net: Net) -> dict[str, BureauKeys]:
    return {cc: load_bureau_keys(net.configs[cc].keys.dir, cc) for cc in BUREAUS}


def _body(kind: MessageKind, target: PublishResult, **over: Any) -> dict[str, Any]:
    """A valid body of ``kind`` about IT's message ``target`` (``over`` replaces fields)."""
    if kind == MessageKind.REVIEW:
        body: dict[str, Any] = {
            "subject_sender": "IT",
            "subject_msg_id": target.msg_id,
            "statement_hash": target.statement_hash,
            "decision": "approved",
            "grounds": [],
            "reason": "checked against the rules",
        }
    else:
        body = {"subject_sender": "IT", "case_ref": "CCF-2026-H1"}
        if kind != MessageKind.UNBLOCK:
            body["reason"] = "challenge pending"
    return body | over


def _frame(
    signer: BureauKeys, fr: BureauKeys, kind: MessageKind, notice_id: str, body: Any
) -> bytes | None:
    """``body`` as a ``kind`` message about IT's ``notice_id``, signed by ``signer``, for FR."""
    try:
        sealed = seal(
            signer=signer,
            kind=kind,
            notice_id=notice_id,
            notice_type="red",
            header={"notice_id": notice_id, "notice_type": "red", kind.value: body},
            units={},
            grants={"FR": Grant(frozenset(), (), f"safeguard:{kind.value}")},
            handling="H0",
        )
        return sealed.package_for(
            "FR",
            topic="nbx.inbox.FR",
            recipient_kid=fr.encryption_key_id,
            recipient_key=fr.encryption_key.public_key(),
        )
    except (ValueError, TypeError, OverflowError):  # no canonical form: the signer cannot sign
        return None


def _malformed(kind: MessageKind, body: dict[str, Any], drops: list[int], sets: Any) -> Any:
    """``body`` with fields dropped and set to hostile values; None if still valid."""
    out = dict(body)
    keys = sorted(out)
    for d in drops:
        out.pop(keys[d % len(keys)], None)
    for key, value in sets:
        out[key] = value
    try:
        MODELS[kind].model_validate(out)
    except (ValueError, RecursionError):
        return out
    return None  # still a valid body: not an attack on the schema


def _envelope_verdict(frame: bytes, keys: dict[str, BureauKeys]) -> Reason | None:
    """The envelope's own rejection of ``frame`` at FR, if it has one: a body too deep or too
    wide for any header, or one whose numbers have no canonical form (a float beyond 2**53),
    never reaches the safeguard checks and is quarantined as ``malformed``."""
    try:
        open_package(
            frame,
            topic="nbx.inbox.FR",
            recipient="FR",
            decryption_keys=keys["FR"].decryption_keys(),
            directory=StaticDirectory([k.public() for k in keys.values()]),
        )
    except EnvelopeRejected as rejected:
        return rejected.reason
    return None


def _forgeries(keys: dict[str, BureauKeys], frames: list[bytes]) -> list[tuple[bytes, Reason, str]]:
    """Every genuine review and decision among ``frames`` (FR's inbox) forged twice: its body
    changed (an approval turned into a refusal, another case) with the reviewer's or oversight
    body's signature kept, and the changed statement signed with IT's key instead. Anyone can
    encrypt to FR; neither signature verifies for the claimed signer."""
    out: list[tuple[bytes, Reason, str]] = []
    for frame in frames:
        package = decrypt_as(keys["FR"], frame)
        statement = statement_of(package)
        kind = statement["kind"]
        if kind not in FACTS:
            continue
        body = dict(statement["header"][kind])
        if kind == MessageKind.REVIEW:
            body |= {"decision": "refused", "grounds": ["art3"], "reason": "forged refusal"}
        else:
            body |= {"case_ref": "CCF-2026-FORGED"}
        altered = statement | {"header": statement["header"] | {kind: body}}
        kept = {**package, "statement": b64u(jcs(altered))}
        other = resigned(package, altered, keys["IT"].signing_key)
        for forged in (kept, other):
            out.append(
                (encrypt_to(keys["FR"], json.dumps(forged).encode()), Reason.SIGNATURE, "forged")
            )
    return out


async def _produce(bootstrap: str, frames: list[bytes]) -> list[str]:
    """Write ``frames`` to FR's inbox; the ``topic:partition:offset`` of each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 << 20)
    await producer.start()
    sources: list[str] = []
    try:
        for i in range(0, len(frames), 200):
            acks = [
                await producer.send("nbx.inbox.FR", value, key=b"k")
                for value in frames[i : i + 200]
            ]
            for meta in await asyncio.gather(*acks):
                sources.append(f"{meta.topic}:{meta.partition}:{meta.offset}")
    finally:
        await producer.stop()
    return sources


async def test_signed_hostile_safeguard_messages_are_quarantined_with_their_exact_reason(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Genuine notices get genuine reviews and decisions (approved, blocked, blocked and
    unblocked, deleted, updated after approval); then generated hostile safeguard messages with
    valid signatures, every genuine record again and forgeries of the genuine reviews and
    decisions: each hostile record is quarantined with exactly its attack's reason
    (not-reviewer / not-oversight / review-mismatch / schema, or the envelope's malformed /
    replay / signature), the daemon keeps running and no state changes."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, BUREAUS, bootstrap, idempotence=idempotence_supported, roles=ROLES)
    await net.ensure_topics(*BUREAUS)
    keys = _keys(net)
    fr = net.daemon("FR")
    await net.start("FR")
    try:
        notices = [canary_notice(f"IT-2026-F{i:04d}") for i in range(4)]
        published = [await net.publish("IT", n, ["FR"]) for n in notices]
        assert all(p.sent == ["FR"] for p in published)

        def state(i: int) -> tuple[str, int] | None:
            stored = fr.sink.notice(notices[i].notice_id, READ)
            return None if stored is None else (stored["state"], stored["version"])

        assert await wait_for(
            lambda: all(state(i) == (NoticeState.PENDING_REVIEW, 1) for i in range(4))
        )

        async def reviews(pub: Publisher) -> None:
            for i in (0, 2):
                await pub.review(
                    subject_sender="IT",
                    subject_msg_id=published[i].msg_id,
                    notice_id=notices[i].notice_id,
                    notice_type="red",
                    statement_hash=published[i].statement_hash or "",
                    decision="approved",
                    reason="meets the criteria",
                    to=["FR", "IT"],
                )

        async def decisions(pub: Publisher) -> None:
            for kind, i, case in (
                ("block", 1, "CCF-2026-A"),
                ("block", 0, "CCF-2026-B"),
                ("unblock", 0, "CCF-2026-B"),
                ("delete", 3, "CCF-2026-C"),
            ):
                await pub.oversight(
                    kind,  # type: ignore[arg-type]
                    subject_sender="IT",
                    notice_id=notices[i].notice_id,
                    notice_type="red",
                    case_ref=case,
                    reason=None if kind == "unblock" else "challenge pending",
                    to=["FR", "IT"],
                )

        await net.with_publisher("XR", reviews)
        await net.with_publisher("XO", decisions)
        updated = await net.publish("IT", notices[2].model_copy(update={"version": 2}), ["FR"])
        assert updated.sent == ["FR"]
        genuine = len(published) + 2 + 4 + 1
        want = {
            0: (NoticeState.ACTIONABLE, 1),
            1: (NoticeState.BLOCKED, 1),
            2: (NoticeState.PENDING_REVIEW, 2),  # the update needs its own approval
            3: (NoticeState.PURGED, 1),
        }
        assert await wait_for(lambda: all(state(i) == s for i, s in want.items()), timeout_s=60)
        assert fr.stats.quarantined == 0, fr.stats.reasons

        # --- the attack -------------------------------------------------------------------
        targets = [published[0], published[1], published[2], updated]
        n = max(COUNTS.inbox_records // 24, 8)
        attacks: list[tuple[bytes, Reason, str]] = []  # (frame, expected reason, class)
        for kind, who, i in generate(ROLE_ATTACK, n):
            impostor = IMPOSTORS[kind][who]
            target = targets[i]
            frame = _frame(keys[impostor], keys["FR"], kind, target.notice_id, _body(kind, target))
            assert frame is not None
            expected = Reason.NOT_REVIEWER if kind == MessageKind.REVIEW else Reason.NOT_OVERSIGHT
            attacks.append((frame, expected, "wrong role"))
        for i, bad_hash, refused, grounds in generate(MISMATCH, n):
            target = targets[i + 1 if i == 2 else i]  # also the update's own msg id
            if bad_hash == target.statement_hash:
                continue
            over: dict[str, Any] = {"statement_hash": bad_hash}
            if refused:
                over |= {"decision": "refused", "grounds": [str(g) for g in grounds]}
            body = _body(MessageKind.REVIEW, target, **over)
            frame = _frame(keys["XR"], keys["FR"], MessageKind.REVIEW, target.notice_id, body)
            assert frame is not None
            attacks.append((frame, Reason.REVIEW_MISMATCH, "statement hash"))
        for kind, i, drops, sets in generate(MALFORMED, 2 * n):
            target = targets[i]
            body = _malformed(kind, _body(kind, target), drops, sets)
            if body is None:
                continue
            frame = await asyncio.to_thread(
                _frame, keys[ENTITLED[kind]], keys["FR"], kind, target.notice_id, body
            )
            if frame is not None:
                expected = _envelope_verdict(frame, keys) or Reason.SCHEMA
                attacks.append((frame, expected, "malformed body"))
        inbox = await asyncio.to_thread(read_all, bootstrap, "nbx.inbox.FR", expect=genuine)
        assert len(inbox) == genuine
        attacks += [(value, Reason.REPLAY, "replay") for _, value, _ in inbox]
        attacks += _forgeries(keys, [value for _, value, _ in inbox])
        random.Random(len(attacks)).shuffle(attacks)
        # the malformed class reaches the safeguard schema check (not only the envelope's limits)
        assert any(r == Reason.SCHEMA for _, r, c in attacks if c == "malformed body")
        classes = {c for _, _, c in attacks}
        assert classes == {
            "wrong role",
            "statement hash",
            "malformed body",
            "replay",
            "forged",
        }, classes
        for c in sorted(classes):
            TALLY.input(f"signed hostile safeguard: {c}", sum(1 for a in attacks if a[2] == c))

        before = fr.stats.quarantined
        sources = await _produce(bootstrap, [frame for frame, _, _ in attacks])
        done = await wait_for(
            lambda: fr.stats.quarantined - before >= len(attacks) or net.tasks["FR"].done(),
            timeout_s=120 + len(attacks) / 10,
        )
        crashed = net.tasks["FR"].done()
        stats = fr.stats
        states = {i: state(i) for i in want}
    finally:
        if net.tasks.get("FR") is not None and net.tasks["FR"].done():
            TALLY.count("crashes")
        await net.stop()
    quarantine = await asyncio.to_thread(
        read_all, bootstrap, "nbx.quarantine.FR", expect=len(attacks)
    )
    got = {
        dict(h)[SOURCE_HEADER].decode(): dict(h)[REASON_HEADER].decode() for _, _, h in quarantine
    }
    wrong = [
        (c, str(reason), got.get(source))
        for (_, reason, c), source in zip(attacks, sources, strict=True)
        if got.get(source) != reason
    ]
    settle(
        genuine + len(attacks),
        genuine,
        len(got),
        lost=sum(1 for _, _, gotten in wrong if gotten is None),
        duplicated=0,
    )
    assert not crashed, f"daemon stopped: {stats}"
    assert done, f"daemon stalled: {stats}"
    assert not wrong, f"{len(wrong)} records with another reason: {wrong[:10]}"
    assert set(stats.reasons) <= KNOWN_REASONS, stats.reasons
    assert "internal" not in stats.reasons
    assert states == want, "a hostile safeguard message changed a notice's state"
