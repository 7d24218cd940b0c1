"""`nbx demo --json` end to end: the exchange, the cancel, and the four safeguard stories, each
read back from the recipients' stores (the report prints what the stores say)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from broker.demo import BUREAUS, SUPERVISED
from tests.conftest import broker_impl

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The JSON report of one `nbx demo --json` run on its own embedded broker."""
    out = subprocess.run(
        [sys.executable, "-m", "broker", "demo", "--impl", broker_impl(), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    parsed: dict[str, Any] = json.loads(out.stdout)
    return parsed


def _all(states: dict[str, Any], state: str, bureaus: list[str]) -> None:
    assert states == dict.fromkeys(bureaus, state)


def test_the_exchange_and_the_cancel_still_work(report: dict[str, Any]) -> None:
    """The original demo: the red notice reaches every bureau and both network bodies (the
    person-targeting red notice pending review, the yellow one actionable), the cancel is
    answered with a purged receipt by every recipient."""
    assert report["ok"] is True
    assert report["bureaus"] == list(BUREAUS)
    assert report["bodies"] == {"XR": ["reviewer"], "XO": ["oversight"]}
    red = {r["recipient"]: r["state"] for r in report["red"]["received"]}
    _all(red, "pending-review", ["ES", "FR", "DE", "NL", "US", "XR", "XO"])
    yellow = {r["recipient"]: r["state"] for r in report["yellow"]["received"]}
    _all(yellow, "actionable", ["IT", "FR", "DE", "NL"])
    for row in report["cancel"]["receipts"]:
        assert "purged" in row["receipts"], row


def test_story_1_an_approved_red_notice_becomes_actionable(report: dict[str, Any]) -> None:
    """Pending review at every national recipient; XR's approval names the statement hash the
    sender signed; then actionable at every one."""
    story = report["stories"]["review"]
    recipients = ["ES", "FR", "DE", "NL", "US"]
    assert story["ok"] is True
    _all(story["before"], "pending-review", recipients)
    assert story["statement_hash"] == story["publish"]["statement_hash"]
    sent = {r["recipient"] for r in story["review"]["recipients"] if r["status"] == "sent"}
    assert sent == {*recipients, "IT", "XR"}  # XR's own copy is approved too
    assert story["review"]["kind"] == "review"
    assert story["reviewer_copy"] == {"XR": "actionable"}
    _all(story["after"], "actionable", recipients)


def test_story_2_a_supervised_senders_political_diffusion_is_held_flagged_and_refused(
    report: dict[str, Any],
) -> None:
    """The diffusion charging "insulting the head of state" from the sender under `pre`
    supervision: held on XR's holding topic (no national bureau stores it), flagged with reasons
    by XR's screening, refused on art3; the recipients hold only the refusal, XR's own copy is
    purged and answered with a `purged` receipt (art3) to the sender."""
    story = report["stories"]["supervised"]
    recipients = ["IT", "ES", "FR", "DE"]
    assert story["ok"] is True
    assert story["sender"] == SUPERVISED
    assert story["supervision"] == "pre"
    assert sorted(story["held_for"]) == sorted(recipients)
    assert story["before"] == dict.fromkeys(recipients)
    assert story["flags"] == [
        {
            "code": "political-offence",
            "reason": "judicial.charges[0].description matches the offence category 'insulting "
            "officials or the head of state' (pattern 'insult* ... head of state').",
        },
        {
            "code": "supervised-sender",
            "reason": f"The sender {SUPERVISED} is under heightened supervision.",
        },
    ]
    assert story["after"] == dict.fromkeys(recipients)
    assert story["reached_national_bureau"] is False
    assert story["reviewer_copy"] == {"XR": "refused"}
    assert story["reviewer_view_kept"] is False
    purged = {(r["recipient"], r["msg_id"], r["reason"]) for r in story["receipts"]
              if r["status"] == "purged"}  # fmt: skip
    assert purged == {("XR", story["publish"]["msg_id"], "art3")}


def test_story_3_a_blocked_notice_stays_blocked_after_its_senders_update(
    report: dict[str, Any],
) -> None:
    """XO blocks an approved notice after a challenge: blocked at every recipient with the case
    reference as reason; the sender's update (version 2) reaches them and stays blocked."""
    story = report["stories"]["challenge"]
    recipients = ["IT", "ES", "DE", "NL", "US"]
    assert story["ok"] is True
    assert story["block"]["kind"] == "block"
    _all(story["after_block"], "blocked", recipients)
    _all(
        story["state_reason"], f"{story['case_ref']}: challenge by the subject pending", recipients
    )
    assert story["update"]["kind"] == "update"
    assert story["versions"] == dict.fromkeys(recipients, 2)
    _all(story["after_update"], "blocked", recipients)


def test_answers_located_then_arrested_reach_the_issuer_and_the_shared_bureau(
    report: dict[str, Any],
) -> None:
    """FR answers story 1's red notice located, then arrested (a photo by reference): IT's store
    (its `nbx status`) holds both answers in that order with their notes, ES (the notice's
    `responses_shared_with`) holds copies, and both messages went to IT and ES only."""
    story = report["stories"]["answers"]
    assert story["ok"] is True
    assert story["responder"] == "FR"
    for result in (story["located"], story["arrested"]):
        assert result["kind"] == "response"
        assert sorted(r["recipient"] for r in result["recipients"]) == ["ES", "IT"]
    at_issuer = story["at_issuer"]
    assert [(r["direction"], r["by"], r["kind"]) for r in at_issuer] == [
        ("received", "FR", "located"),
        ("received", "FR", "arrested"),
    ]
    assert [r["msg_id"] for r in at_issuer] == [
        story["located"]["msg_id"],
        story["arrested"]["msg_id"],
    ]
    assert at_issuer[1]["note"].startswith("Provisionally arrested")
    assert [a["media_type"] for a in at_issuer[1]["attachments"]] == ["image/jpeg"]
    assert [(r["by"], r["kind"]) for r in story["shared"]["ES"]] == [
        ("FR", "located"),
        ("FR", "arrested"),
    ]


def test_the_missing_childs_yellow_notice_reaches_every_national_bureau(
    report: dict[str, Any],
) -> None:
    """ES's missing child notice is stored by every other national bureau; per recipient the
    report says how many fields arrived and which rule decided the name (disclosed or withheld),
    consistent with what arrived in its store."""
    story = report["stories"]["missing_child"]
    assert story["ok"] is True
    recipients = story["recipients"]
    assert sorted(recipients) == sorted(cc for cc in BUREAUS if cc != "ES")
    for cc, row in recipients.items():
        assert row["state"] == "actionable", cc
        assert 1 <= row["disclosed"] <= row["of"], cc
        assert row["name_rule"], cc
        assert row["search_needs"]["person.family_name"] is row["name"], cc
        # with the example policies every bureau gets what the search needs, by a named rule
        assert all(row["search_needs"].values()), (cc, row["search_needs"])
        assert not row["name_rule"].startswith("default-"), cc
        assert row["disclosed"] >= len(row["search_needs"]), cc


def test_story_4_an_erasure_confirmed_late_is_overdue_then_confirmed(
    report: dict[str, Any],
) -> None:
    """ES's erasure order: FR, IT and NL confirm at once; DE's daemon is down past the deadline,
    so ES lists DE overdue; DE comes back, purges and confirms; no recipient holds the view."""
    story = report["stories"]["erasure"]
    assert story["ok"] is True
    assert story["order"]["kind"] == "erasure"
    assert [(r["recipient"], r["kind"], r["notice_id"]) for r in story["overdue"]] == [
        ("DE", "erasure", story["notice_id"])
    ]
    sent = sorted(r["recipient"] for r in story["order"]["recipients"] if r["status"] == "sent")
    assert sent == ["DE", "FR", "IT", "NL"]
    assert story["confirmed"] == sent
    assert story["views_left"] == dict.fromkeys(sent, False)


def test_the_audit_log_is_verified_and_the_transparency_report_written(
    report: dict[str, Any],
) -> None:
    """ES's audit log is checkpointed and verified intact and records its disclosures (the
    yellow notice, the erasure order); XR's report page is written where the demo says."""
    audit = report["audit"]
    assert (audit["bureau"], audit["ok"], audit["problem"]) == ("ES", True, None)
    assert audit["checkpoints"] >= 1
    assert audit["actions"]["disclosure"] >= 2  # the yellow notice and its erasure order
    assert sum(audit["actions"].values()) == audit["entries"]
    transparency = report["transparency"]
    page = Path(transparency["html"])
    try:
        assert transparency["bureau"] == "XR"
        html = page.read_text(encoding="utf-8")
        assert html.startswith("<!DOCTYPE html>")
        assert "Transparency report: XR" in html
        refused = transparency["report"]["totals"]["refused"]["art3"]
        assert refused == "<5"  # one refusal on Art. 3 (story 2): a small count
    finally:
        page.unlink(missing_ok=True)
        page.parent.rmdir()


def test_the_report_validates_against_its_schema(report: dict[str, Any]) -> None:
    """`nbx demo --json` matches schemas/cli/demo.json (tests/cli/test_json_schemas.py checks
    every other command's --json output)."""
    from tests.cli.test_json_schemas import validate

    validate("demo", report)
