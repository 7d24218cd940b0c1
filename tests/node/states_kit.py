"""Sealed and opened messages of every safeguard kind, and a receive pipeline that applies them
(no broker): the kit of the notice-state tests (test_states.py, test_states_property.py)."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

from broker.envelope import Grant, Sealed, VerifiedPackage, open_package, seal
from broker.keys import BureauKeys
from broker.keys.bureau import StaticDirectory
from broker.node.pipeline import HANDLERS, Outcome, Received, ReceivePipeline
from broker.node.stats import DaemonStats
from broker.schemas import disclosure_units, non_redactable, validate_view
from broker.sinks.base import Position, Sink
from broker.vocab import MessageKind
from broker.wire.canonical import jcs
from tests.node.helpers import example

IT, FR, XR, XO = (BureauKeys.generate(cc) for cc in ("IT", "FR", "XR", "XO"))
DIRECTORY = StaticDirectory([k.public() for k in (IT, FR, XR, XO)])
TOPIC = "nbx.inbox.FR"
ROLES = {"XR": frozenset({"reviewer"}), "XO": frozenset({"oversight"})}
NOTICE_ID = "IT-2025-0001"
FAMILY = example("red").person.family_name  # type: ignore[attr-defined]


def roles(bureau: str) -> frozenset[str]:
    """The directory's roles in these tests: XR reviews, XO is the oversight body."""
    return ROLES.get(bureau, frozenset())


def needs_review(kind: str, notice_type: str, sender: str) -> bool:
    """The default network rule: publish and update of a person-targeting type (any sender)."""
    del sender
    return kind in ("publish", "update") and notice_type in ("red", "blue", "green", "diffusion")


def opened(sealed: Sealed) -> VerifiedPackage:
    """``sealed`` encrypted for FR and opened by FR."""
    frame = sealed.package_for(
        "FR",
        topic=TOPIC,
        recipient_kid=FR.encryption_key_id,
        recipient_key=FR.encryption_key.public_key(),
    )
    return open_package(
        frame,
        topic=TOPIC,
        recipient="FR",
        decryption_keys=FR.decryption_keys(),
        directory=DIRECTORY,
    )


def notice_sealed(version: int = 1, *, language: str | None = None) -> Sealed:
    """IT's red notice (publish for version 1, else update), every unit granted to FR."""
    changes: dict[str, Any] = {"version": version}
    if language is not None:
        changes["language"] = language
    notice = example("red", **changes)
    split = disclosure_units(notice)
    units = {u.path: u.value for u in split}
    return seal(
        signer=IT,
        kind=MessageKind.PUBLISH if version == 1 else MessageKind.UPDATE,
        notice_id=notice.notice_id,
        notice_type="red",
        header=non_redactable(notice),
        units=units,
        grants={"FR": Grant(frozenset(units), (), "FR@test")},
        handling=str(notice.handling.code),
    )


def notice(version: int = 1) -> VerifiedPackage:
    """IT's red notice at ``version``, as FR opens it."""
    return opened(notice_sealed(version))


def fact_sealed(kind: MessageKind, body: dict[str, Any], *, signer: BureauKeys) -> Sealed:
    """A review / block / unblock / delete about IT's notice, as the Publisher seals it."""
    header = {"notice_id": NOTICE_ID, "notice_type": "red", kind.value: body}
    return seal(
        signer=signer,
        kind=kind,
        notice_id=NOTICE_ID,
        notice_type="red",
        header=header,
        units={},
        grants={"FR": Grant(frozenset(), (), f"safeguard:{kind.value}")},
        handling="H0",
    )


def review(
    subject: VerifiedPackage,
    decision: str = "approved",
    *,
    grounds: tuple[str, ...] = (),
    signer: BureauKeys = XR,
    statement_hash: str | None = None,
) -> VerifiedPackage:
    """XR's attestation of ``subject`` (its own statement hash unless one is given)."""
    body = {
        "subject_sender": "IT",
        "subject_msg_id": subject.msg_id,
        "statement_hash": statement_hash or subject.statement_hash,
        "decision": decision,
        "grounds": list(grounds),
        "reason": "checked against the rules",
    }
    return opened(fact_sealed(MessageKind.REVIEW, body, signer=signer))


def oversight(
    kind: MessageKind, case_ref: str = "CCF-2026-7", *, signer: BureauKeys = XO
) -> VerifiedPackage:
    """XO's block / unblock / delete of IT's notice in case ``case_ref``."""
    body: dict[str, Any] = {"subject_sender": "IT", "case_ref": case_ref}
    if kind != MessageKind.UNBLOCK:
        body["reason"] = "challenge pending"
    return opened(fact_sealed(kind, body, signer=signer))


def forged(sealed: Sealed, **changes: Any) -> VerifiedPackage:
    """``sealed`` with its statement's header body changed and the original signature kept:
    what an attacker who can encrypt to FR (anyone) could send. Raises EnvelopeRejected."""
    statement = json.loads(sealed.statement)
    kind = statement["kind"]
    statement["header"][kind] = statement["header"][kind] | changes
    altered = dataclasses.replace(sealed, statement=jcs(statement))
    return opened(altered)


def pipeline(sink: Sink, **kw: Any) -> ReceivePipeline:
    """FR's receive pipeline with the tests' roles and review rule (``kw`` overrides)."""
    settings: dict[str, Any] = {"roles": roles, "needs_review": needs_review} | kw
    return ReceivePipeline(
        bureau="FR",
        directory=DIRECTORY,
        sink=sink,
        stats=DaemonStats(),
        decryption_keys=FR.decryption_keys(),
        validate=functools.partial(validate_view, copy=False),
        policies=None,
        max_frame_bytes=1 << 20,
        min_suite=1,
        require_log_append_time=True,
        receipts_topic="nbx.receipts.FR",
        **settings,
    )


class Inbox:
    """Delivers opened packages to FR's pipeline at increasing offsets."""

    def __init__(self, pipe: ReceivePipeline) -> None:
        """Deliver through ``pipe``."""
        self.pipe = pipe
        self.offset = 0

    def deliver(self, package: VerifiedPackage) -> Outcome:
        """Hand ``package`` to its kind's handler, as if read at the next offset."""
        self.offset += 1
        return self.at(package, self.offset)

    def at(self, package: VerifiedPackage, offset: int) -> Outcome:
        """Hand ``package`` to its handler as read at ``offset`` (again: a redelivery)."""
        received = Received(package, Position(TOPIC, 0, offset), 0.0)
        return HANDLERS[package.kind](self.pipe, received)


def on_disk(path: Path) -> bytes:
    """The bytes of an SQLite store and its WAL / journal."""
    files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
    return b"".join(f.read_bytes() for f in files if f.exists())
