"""The transparency report of real traffic with known outcomes: IT's red notices reviewed by XR
(approved, refused on art3, on art2 and art3, one left pending), one blocked and the pending one
deleted by XO; ES's yellow notices (one cancelled) and a blue notice FR's policy declines;
garbage and a replayed record on FR's inbox. FR's report (JSON, and
the page read back from Chromium) and XR's (with review times) hold exactly the expected figures.

The figures come from the audit entries the stores write (docs/safeguards.md, "Audit trail"
and "Transparency report")."""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from broker import devbroker
from broker.cli import main
from broker.examples import policies_dir
from broker.node import Publisher, PublishResult
from broker.vocab import NoticeState, ResponseKind
from tests.node.helpers import Net, example, memory_net, read_topic, wait_for
from tests.report.browser import dump_dom, figures
from tests.report.test_report_browser import expected_figures

BUREAUS = ("IT", "ES", "FR", "XR", "XO")
ROLES = {"XR": ["reviewer"], "XO": ["oversight"]}
S = "<5"  # how a count from 1 to 4 is published

RED = [f"IT-2025-{n:04d}" for n in range(101, 113)]  # 12 red notices
APPROVED, ART3, ART2_ART3, PENDING = RED[:6], RED[6:9], RED[9:11], RED[11]
BLOCKED = APPROVED[5]
YELLOW = ["ES-2025-0201", "ES-2025-0202"]
CANCELLED = YELLOW[0]
DECLINED = "ES-2025-0901"


def figures_row(quarantine: tuple[str, ...] = (), **given: Any) -> dict[str, Any]:
    """A published row's figures: 0 unless given (``refused``, ``purged`` and ``quarantined``
    merged in); ``quarantine``: the reasons the report lists."""
    row: dict[str, Any] = {
        "received": 0,
        "actionable": 0,
        "refusals": 0,
        "refused": dict.fromkeys(("criteria", "art2", "art3", "refugee", "other"), 0),
        "declined_by_policy": 0,
        "quarantined": dict.fromkeys(quarantine, 0),
        "blocked": 0,
        "deleted": 0,
        "purged": dict.fromkeys(("cancel", "erasure", "refused", "delete", "retention-expired"), 0),
        "overdue": 0,
        "review_time": {"reviews": 0, "median_s": None, "p95_s": None},
        "responses": dict.fromkeys([k.value for k in ResponseKind], 0),
    }
    for key in ("refused", "purged", "quarantined", "responses"):
        row[key] |= given.pop(key, {})
    return row | given


#: the quarantine reasons FR's report lists (in the order of broker.vocab.Reason)
FR_QUARANTINE = ("frame", "replay")
#: FR's report: what FR received and what became of it
FR_ROWS = [
    {
        "sender": "ES",
        "notice_type": "blue",
        **figures_row(FR_QUARANTINE, received=S, declined_by_policy=S),
    },
    {
        "sender": "ES",
        "notice_type": "yellow",
        # two publishes and the cancel; ES-2025-0202 actionable; ES-2025-0201 purged
        **figures_row(FR_QUARANTINE, received=S, actionable=S, purged={"cancel": S}),
    },
    {
        "sender": "IT",
        "notice_type": "red",
        **figures_row(
            FR_QUARANTINE,
            received=12,  # the replayed copy is quarantined, not received again
            actionable=5,  # six approved, one of them blocked
            refusals=5,
            refused={"art2": S, "art3": 5},
            quarantined={"replay": S},
            blocked=S,
            deleted=S,
            purged={"refused": 5, "delete": S},
        ),
    },
    # garbage on the inbox: no sender, no type
    {"sender": None, "notice_type": None, **figures_row(FR_QUARANTINE, quarantined={"frame": S})},
]
FR_TOTALS = figures_row(
    FR_QUARANTINE,
    received=16,
    actionable=6,
    refusals=5,
    refused={"art2": S, "art3": 5},
    declined_by_policy=S,
    quarantined={"frame": S, "replay": S},
    blocked=S,
    deleted=S,
    purged={"cancel": S, "refused": 5, "delete": S},
)
#: what is written straight onto FR's inbox: not a frame at all
GARBAGE = b"\x00garbage, not a frame\xff" * 3


def _policies(tmp_path: Path) -> Path:
    """The example policies, with FR declining ES's blue notices."""
    policies = tmp_path / "policies-src"
    shutil.copytree(policies_dir(), policies)
    with (policies / "FR.toml").open("a") as fr:
        fr.write(
            '\n[inbound]\n[[inbound.decline]]\nid = "fr-decline-es-blue"\n'
            'reason = "handled through another channel"\nsender = "ES"\nnotice_type = "blue"\n'
        )
    return policies


def _states(net: Net, cc: str) -> dict[str, str]:
    return {r["notice_id"]: r["state"] for r in net.daemon(cc).sink.notices()}


#: writes one raw record onto a topic (the in-memory or the real broker)
Inject = Callable[[str, bytes], Awaitable[None]]


async def _traffic(net: Net, inject: Inject, first_record: Callable[[], Awaitable[bytes]]) -> None:
    """Send the traffic and wait until FR and XR hold its outcome; ``inject`` writes garbage
    and a copy of the first record on FR's inbox (``first_record``) straight to the broker."""
    await net.start("FR", "XR", "IT", "ES")
    published: dict[str, PublishResult] = {}

    async def publish_red(pub: Publisher) -> None:
        for notice_id in RED:
            published[notice_id] = await pub.publish(
                example("red", notice_id=notice_id), ["FR", "XR"]
            )

    await net.with_publisher("IT", publish_red)
    assert await wait_for(
        lambda: all(
            _states(net, cc).get(n) == NoticeState.PENDING_REVIEW
            for cc in ("FR", "XR")
            for n in RED
        )
    )

    async def review(pub: Publisher) -> None:
        for notice_id in [*APPROVED, *ART3, *ART2_ART3]:
            sent = published[notice_id]
            assert sent.statement_hash is not None
            refused = notice_id not in APPROVED
            await pub.review(
                subject_sender="IT",
                subject_msg_id=sent.msg_id,
                notice_id=notice_id,
                notice_type="red",
                statement_hash=sent.statement_hash,
                decision="refused" if refused else "approved",
                grounds=(["art3"] if notice_id in ART3 else ["art2", "art3"]) if refused else [],
                reason="checked",
                to=["FR", "IT", "XR"],  # as `nbx review`: the audience (XR too) and the sender
            )

    await net.with_publisher("XR", review)

    async def block(pub: Publisher) -> PublishResult:
        return await pub.oversight(
            "block",
            subject_sender="IT",
            notice_id=BLOCKED,
            notice_type="red",
            case_ref="CCF-2026-9",
            reason="challenge pending",
            to=["FR", "IT"],
        )

    await net.with_publisher("XO", block)

    async def delete(pub: Publisher) -> PublishResult:
        return await pub.oversight(
            "delete",
            subject_sender="IT",
            notice_id=PENDING,
            notice_type="red",
            case_ref="CCF-2026-10",
            reason="not compliant",
            to=["FR", "IT"],
        )

    await net.with_publisher("XO", delete)
    await inject("nbx.inbox.FR", GARBAGE)
    await inject("nbx.inbox.FR", await first_record())  # a replay of IT's first notice

    async def es_traffic(pub: Publisher) -> None:
        for notice_id in YELLOW:
            await pub.publish(example("yellow", notice_id=notice_id), ["FR"])
        await pub.lifecycle(
            "cancel",
            CANCELLED,
            "yellow",
            ["FR"],
            details={"notice_id": CANCELLED, "reason": "found"},
        )
        blue = example("blue", notice_id=DECLINED, issuing_bureau="ES")
        await pub.publish(blue, ["FR"])

    await net.with_publisher("ES", es_traffic)

    fr_final = {
        **dict.fromkeys(APPROVED, NoticeState.ACTIONABLE.value),
        BLOCKED: NoticeState.BLOCKED.value,
        **dict.fromkeys([*ART3, *ART2_ART3], NoticeState.REFUSED.value),
        PENDING: NoticeState.PURGED.value,
        CANCELLED: NoticeState.CANCELLED.value,
        YELLOW[1]: NoticeState.ACTIONABLE.value,
    }
    assert await wait_for(lambda: _states(net, "FR") == fr_final), _states(net, "FR")
    fr_stats = net.daemon("FR").stats
    quarantined = {"declined-by-policy": 1, "frame": 1, "replay": 1}
    assert await wait_for(lambda: fr_stats.reasons == quarantined), fr_stats
    xr_final = {
        **dict.fromkeys(APPROVED, NoticeState.ACTIONABLE.value),
        **dict.fromkeys([*ART3, *ART2_ART3], NoticeState.REFUSED.value),
        PENDING: NoticeState.PENDING_REVIEW.value,
    }
    assert await wait_for(lambda: _states(net, "XR") == xr_final), _states(net, "XR")


def _report(config: Path, *args: str) -> str:
    out = CliRunner().invoke(main, ["report", "--config", str(config), *args])
    assert out.exit_code == 0, out.output
    return out.output


def _check_reports(net: Net, tmp_path: Path, *, browser: bool, reviewer: bool = True) -> None:
    """FR's and (``reviewer``) XR's reports hold exactly the expected figures (and FR's page,
    read back from Chromium, the same as its JSON)."""
    fr = json.loads(_report(net.paths["FR"], "--json"))
    assert fr["bureau"] == "FR"
    assert fr["quarantine_reasons"] == list(FR_QUARANTINE)
    assert fr["rows"] == FR_ROWS
    assert fr["totals"] == FR_TOTALS
    assert fr["overdue_by_recipient"] == []
    for notice_id in [*RED, *YELLOW, DECLINED]:
        assert notice_id not in json.dumps(fr)

    if browser:
        page = tmp_path / "fr-report.html"
        assert _report(net.paths["FR"], "--html", str(page)).strip().endswith(str(page))
        shown = figures(dump_dom(page, tmp_path / "profile"))
        assert shown.cells == expected_figures(fr)
        assert shown.cells["rows.2.refused.art3"] == "5"
        assert shown.cells["totals.received"] == "16"

    if not reviewer:
        return
    xr = json.loads(_report(net.paths["XR"], "--json"))
    (row,) = xr["rows"]
    times = row.pop("review_time")
    assert {"sender": "IT", "notice_type": "red", **figures_row(
        received=12,
        actionable=6,  # its own copies: the block was not sent to XR
        refusals=5,  # taken here and received back here: each counted once
        refused={"art2": S, "art3": 5},
        purged={"refused": 5},
    )} == {**row, "review_time": figures_row()["review_time"]}  # fmt: skip
    # eleven decisions taken here, each after its notice arrived
    assert times["reviews"] == 11
    assert 0 <= times["median_s"] <= times["p95_s"]
    assert xr["totals"]["review_time"] == times


async def _traffic_in_memory(net: Net) -> None:
    """The traffic on ``net``'s in-memory broker; the daemons are stopped at the end."""
    kafka = net.kafka
    assert kafka is not None

    async def inject(topic: str, value: bytes) -> None:
        kafka.append(topic, value, key=b"x")

    async def first_record() -> bytes:
        return kafka.values("nbx.inbox.FR")[0]

    try:
        await _traffic(net, inject, first_record)
    finally:
        await net.stop()


async def test_report_counts_known_traffic_in_memory(tmp_path: Path) -> None:
    """The story on the in-memory broker (JSON only)."""
    net = memory_net(tmp_path / "net", BUREAUS, roles=ROLES, policies=_policies(tmp_path))
    await _traffic_in_memory(net)
    _check_reports(net, tmp_path, browser=False)


async def test_report_counts_known_traffic_in_a_json_lines_store(tmp_path: Path) -> None:
    """FR's and XR's reports from the JSON-lines store: XR's eleven review decisions, appended
    by its publisher's handle while its running daemon rewrote the file on purges, are all
    there, and every node's audit log is one intact chain (`nbx audit verify`)."""
    net = memory_net(
        tmp_path / "net", BUREAUS, roles=ROLES, policies=_policies(tmp_path), sink="jsonl"
    )
    await _traffic_in_memory(net)
    _check_reports(net, tmp_path, browser=False)
    for cc in BUREAUS:
        out = CliRunner().invoke(main, ["audit", "verify", "--config", str(net.paths[cc])])
        assert out.exit_code == 0, out.output
        assert out.output.startswith("audit log intact:"), out.output


@pytest.mark.e2e
@pytest.mark.process  # starts the browser
async def test_report_counts_known_traffic_on_the_real_broker(
    tmp_path: Path, fresh_broker: devbroker.DevBroker, idempotence_supported: bool
) -> None:
    """The story on the real broker (noida-db and tansu); FR's page in Chromium shows the same
    figures as its JSON. A broker of its own: the replayed record is the first on FR's inbox."""
    kafka_bootstrap = fresh_broker.bootstrap
    net = Net(
        tmp_path / "net",
        BUREAUS,
        kafka_bootstrap,
        idempotence=idempotence_supported,
        roles=ROLES,
        policies=_policies(tmp_path),
    )
    await net.ensure_topics(*BUREAUS)
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await raw.start()

    async def inject(topic: str, value: bytes) -> None:
        await raw.send_and_wait(topic, value, key=b"x")

    async def first_record() -> bytes:
        return (await read_topic(kafka_bootstrap, "nbx.inbox.FR", expect=1))[0][1]

    try:
        await _traffic(net, inject, first_record)
    finally:
        await raw.stop()
        await net.stop()
    _check_reports(net, tmp_path, browser=True)
