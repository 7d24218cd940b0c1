"""Safeguard messages across daemons (in-memory broker; one e2e test on the real broker): the
Publisher seals reviews and oversight decisions, recipients derive the state, and the purged
receipts reach the notice's sender and the oversight body."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.node import Publisher, PublishResult
from broker.vocab import NoticeState
from tests.audit_access import READ
from tests.node.helpers import Net, example, memory_net, wait_for

BUREAUS = ("IT", "FR", "DE", "XR", "XO")


#: the roles the network's signed directory gives (every daemon reads them from it)
ROLES = {"XR": ["reviewer"], "XO": ["oversight"]}


def _state(net: Net, cc: str, notice_id: str) -> str | None:
    stored = net.daemon(cc).sink.notice(notice_id, READ)
    return None if stored is None else stored["state"]


def _everywhere(net: Net, notice_id: str, state: str) -> bool:
    """Whether FR and DE both hold ``notice_id`` in ``state``."""
    return all(_state(net, cc, notice_id) == state for cc in ("FR", "DE"))


def _receipts(net: Net, cc: str, notice_id: str) -> set[tuple[str, str, str, str | None]]:
    """(recipient, msg id, status, reason) of every receipt ``cc`` holds for ``notice_id``."""
    return {
        (r["recipient"], m["msg_id"], x["status"], x["reason"])
        for r in net.daemon(cc).sink.status(notice_id)
        for m in r["messages"]
        for x in m["receipts"]
    }


async def _story(net: Net) -> None:
    """IT publishes a red notice to FR and DE: pending-review; XR approves: actionable; XO
    blocks: blocked; XO deletes: purged, with purged receipts to IT and XO."""
    red = example("red")
    await net.start("FR", "DE", "IT", "XO")
    published: PublishResult = await net.publish("IT", red, ["FR", "DE"])
    assert published.statement_hash is not None
    sent = [m for r in net.daemon("IT").sink.status(red.notice_id) for m in r["messages"]]
    assert [m["statement_hash"] for m in sent] == [published.statement_hash] * 2
    assert [m["notice_type"] for m in sent] == ["red"] * 2  # nbx status applies the rules
    assert await wait_for(lambda: _everywhere(net, red.notice_id, NoticeState.PENDING_REVIEW))

    async def approve(pub: Publisher) -> PublishResult:
        assert published.statement_hash is not None
        return await pub.review(
            subject_sender="IT",
            subject_msg_id=published.msg_id,
            notice_id=red.notice_id,
            notice_type="red",
            statement_hash=published.statement_hash,
            decision="approved",
            reason="meets the criteria",
            to=["FR", "DE", "IT"],
        )

    for cc in ("FR", "DE"):  # the hash every recipient verified is the sender's
        hashed = net.daemon(cc).sink.statement("IT", published.msg_id)
        assert hashed == (red.notice_id, published.statement_hash)
        # and the audience the sender signed: whom a reviewer or the oversight body answers
        assert net.daemon(cc).sink.audience("IT", published.msg_id) == ("DE", "FR")
        assert net.daemon(cc).sink.audience("IT", "no-such-message") is None
    approval = await net.with_publisher("XR", approve)
    assert sorted(approval.sent) == ["DE", "FR", "IT"]
    assert await wait_for(lambda: _everywhere(net, red.notice_id, NoticeState.ACTIONABLE))
    # the sender holds the attestation too (nbx status lists it): who approved which statement
    it = net.daemon("IT").sink
    assert await wait_for(lambda: len(it.facts("IT", red.notice_id)) == 1)
    (fact,) = it.facts("IT", red.notice_id)
    assert (fact.by, fact.kind, fact.decision, fact.statement_hash) == (
        "XR",
        "review",
        "approved",
        published.statement_hash,
    )

    async def decide(kind: str, case: str, reason: str | None) -> PublishResult:
        async def send(pub: Publisher) -> PublishResult:
            return await pub.oversight(
                kind,  # type: ignore[arg-type]
                subject_sender="IT",
                notice_id=red.notice_id,
                notice_type="red",
                case_ref=case,
                reason=reason,
                to=["FR", "DE", "IT"],
            )

        result: PublishResult = await net.with_publisher("XO", send)
        return result

    await decide("block", "CCF-2026-1", "challenge pending")
    assert await wait_for(lambda: _everywhere(net, red.notice_id, NoticeState.BLOCKED))
    deleted = await decide("delete", "CCF-2026-1", "not compliant with Art. 3")
    assert await wait_for(lambda: _everywhere(net, red.notice_id, NoticeState.PURGED))
    want_it = {(cc, published.msg_id, "purged", "delete:CCF-2026-1") for cc in ("FR", "DE")}
    assert await wait_for(lambda: want_it <= _receipts(net, "IT", red.notice_id))
    want_xo = {(cc, deleted.msg_id, "purged", None) for cc in ("FR", "DE")}
    assert await wait_for(lambda: want_xo <= _receipts(net, "XO", red.notice_id))
    family = red.person.family_name.encode()  # type: ignore[attr-defined]
    for cc in ("FR", "DE"):
        stored = net.daemon(cc).sink.notice(red.notice_id, READ)
        assert stored is not None
        assert stored["view"] is None
        path = net.configs[cc].sink_path()
        files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
        assert family not in b"".join(f.read_bytes() for f in files if f.exists())


async def test_review_block_and_delete_between_daemons(tmp_path: Path) -> None:
    """The story on the in-memory broker; every daemon takes the roles and the review rule from
    the network's signed directory (XR reviewer, XO oversight), as nodes do."""
    net = memory_net(tmp_path, BUREAUS, roles=ROLES)
    try:
        await _story(net)
    finally:
        await net.stop()


@pytest.mark.e2e
async def test_review_block_and_delete_on_the_real_broker(
    tmp_path: Path, kafka_bootstrap: str, idempotence_supported: bool
) -> None:
    """The same story on the real broker (noida-db and tansu)."""
    net = Net(tmp_path, BUREAUS, kafka_bootstrap, idempotence=idempotence_supported, roles=ROLES)
    await net.ensure_topics(*BUREAUS)
    try:
        await _story(net)
    finally:
        await net.stop()


async def test_a_bureaus_own_policy_demands_review_beyond_the_network_rules(
    tmp_path: Path,
) -> None:
    """FR's policy holds ES's yellow notices for review (the network rules do not: yellow
    targets no wanted person): FR stores it pending-review and XR's approval makes it actionable;
    DE, without such a rule, has it actionable at once."""
    import shutil

    from broker.examples import policies_dir

    policies = tmp_path / "policies-src"
    shutil.copytree(policies_dir(), policies)
    with (policies / "FR.toml").open("a") as fr:
        fr.write(
            '\n[[inbound.require_review]]\nid = "fr-review-es-yellow"\n'
            'reason = "checked here first"\nsender = "ES"\nnotice_type = "yellow"\n'
        )
    net = memory_net(tmp_path / "net", [*BUREAUS, "ES"], roles=ROLES, policies=policies)
    yellow = example("yellow")
    await net.start("FR", "DE")
    try:
        published = await net.publish("ES", yellow, ["FR", "DE"])
        assert await wait_for(lambda: _state(net, "DE", yellow.notice_id) == "actionable")
        assert await wait_for(lambda: _state(net, "FR", yellow.notice_id) == "pending-review")
        assert published.statement_hash is not None
        statement_hash = published.statement_hash

        async def approve(pub: Publisher) -> PublishResult:
            return await pub.review(
                subject_sender="ES",
                subject_msg_id=published.msg_id,
                notice_id=yellow.notice_id,
                notice_type="yellow",
                statement_hash=statement_hash,
                decision="approved",
                reason="a missing child: no objection",
                to=["FR", "ES"],
            )

        await net.with_publisher("XR", approve)
        assert await wait_for(lambda: _state(net, "FR", yellow.notice_id) == "actionable")
    finally:
        await net.stop()


def _flag_rows(path: Path) -> list[tuple[str, str]]:
    """(sender, notice id) of every flags row in a SQLite store, read from the file."""
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return list(db.execute("SELECT sender, notice_id FROM flags"))
    finally:
        db.close()


async def test_screening_flags_are_stored_with_the_version_and_purged_with_it(
    tmp_path: Path,
) -> None:
    """A red notice charging "insulting the head of state" is flagged at FR when stored (a
    political offence: advice, the notice is still pending review, not refused); the flags are
    kept with that version and deleted with its personal data when the oversight body deletes
    the notice. The compliant example notice gets no flag."""
    import json

    from broker.examples import notices_dir

    data = json.loads((notices_dir() / "red.json").read_text())
    data["judicial"]["charges"][0]["description"] = "Insulting the Head of State on social media"
    political = example("red", judicial=data["judicial"], notice_id="IT-2025-0777")
    net = memory_net(tmp_path, BUREAUS, roles=ROLES)
    await net.start("FR")
    try:
        await net.publish("IT", example("red"), ["FR"])
        await net.publish("IT", political, ["FR"])
        fr = net.daemon("FR").sink
        assert await wait_for(lambda: _state(net, "FR", "IT-2025-0777") == "pending-review")
        plain = fr.notice("IT-2025-0001", READ)
        assert plain is not None
        assert plain["flags"] == []
        stored = fr.notice("IT-2025-0777", READ)
        assert stored is not None
        assert [f["code"] for f in stored["flags"]] == ["political-offence"]
        assert "insulting" in stored["flags"][0]["reason"].lower()

        async def delete(pub: Publisher) -> PublishResult:
            return await pub.oversight(
                "delete",
                subject_sender="IT",
                notice_id="IT-2025-0777",
                notice_type="red",
                case_ref="CCF-7",
                reason="art3",
                to=["FR", "IT"],
            )

        await net.with_publisher("XO", delete)
        assert await wait_for(lambda: _state(net, "FR", "IT-2025-0777") == "purged")
        gone = fr.notice("IT-2025-0777", READ)
        assert gone is not None
        assert gone["flags"] == []
        # the deleted notice's flags are gone with its data; the other notice was screened too
        assert _flag_rows(net.configs["FR"].sink_path()) == [("IT", "IT-2025-0001")]
    finally:
        await net.stop()
