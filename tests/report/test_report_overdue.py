"""Overdue purge confirmations in the transparency report, between daemons: IT cancels five red
notices sent to FR and ES while ES's daemon is down; past the deadline IT's report shows five
overdue confirmations under IT red and from ES; once ES is back and confirms, none.

The overdue figures come from ``Sink.overdue(now)`` (docs/safeguards.md, "Retention and proven
erasure"), which the store implements from branch i18-retention on; before that merge this test
is skipped with that reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from broker.node import Publisher
from broker.report import report_from_store
from broker.sinks import SqliteSink
from broker.vocab import NoticeState
from tests.node.helpers import Net, example, memory_net, wait_for

pytestmark = pytest.mark.skipif(
    not hasattr(SqliteSink, "sweep"),
    reason="needs the overdue purge confirmations of branch i18-retention (Sink.overdue), "
    "not merged on this branch",
)

BUREAUS = ("IT", "FR", "ES")
RED = [f"IT-2025-{n:04d}" for n in range(301, 306)]


def _states(net: Net, cc: str) -> dict[str, str]:
    return {r["notice_id"]: r["state"] for r in net.daemon(cc).sink.notices()}


def _report(net: Net, now: datetime) -> dict[str, Any]:
    stamp = now.isoformat(timespec="milliseconds")
    return report_from_store(net.daemon("IT").sink, bureau="IT", since=None, until=stamp, now=now)


async def test_overdue_confirmations_appear_in_the_report_until_confirmed(tmp_path: Path) -> None:
    """Five cancels ES has not confirmed past the deadline: 5 overdue under IT red and from ES
    (FR confirmed: not listed); ES comes back and confirms: 0 and no recipient listed."""
    net = memory_net(tmp_path, BUREAUS)
    try:
        await net.start("IT", "FR", "ES")

        async def publish(pub: Publisher) -> None:
            for notice_id in RED:
                await pub.publish(example("red", notice_id=notice_id), ["FR", "ES"])

        await net.with_publisher("IT", publish)
        held = dict.fromkeys(RED, NoticeState.ACTIONABLE.value)
        for cc in ("FR", "ES"):
            assert await wait_for(partial(lambda c: _states(net, c) == held, cc))
        net.daemons["ES"].stop()
        await net.tasks.pop("ES")
        net.daemons.pop("ES").sink.close()

        async def cancel(pub: Publisher) -> None:
            for notice_id in RED:
                await pub.lifecycle(
                    "cancel", notice_id, "red", ["FR", "ES"],
                    details={"notice_id": notice_id, "reason": "arrested"},
                )  # fmt: skip

        sent_at = datetime.now(UTC)
        await net.with_publisher("IT", cancel)
        cancelled = dict.fromkeys(RED, NoticeState.CANCELLED.value)
        assert await wait_for(lambda: _states(net, "FR") == cancelled)
        it = net.daemon("IT").sink
        after = sent_at + timedelta(days=30)  # every deadline has passed
        assert await wait_for(lambda: {r["recipient"] for r in it.overdue(after)} == {"ES"})

        report = _report(net, after)
        (row,) = report["rows"]  # IT's own notices: nothing received, five overdue
        assert (row["sender"], row["notice_type"], row["overdue"]) == ("IT", "red", 5)
        assert row["received"] == 0
        assert report["overdue_by_recipient"] == [{"recipient": "ES", "overdue": 5}]
        assert report["totals"]["overdue"] == 5
        # before the deadline nothing is overdue
        assert _report(net, sent_at)["overdue_by_recipient"] == []

        await net.start("ES")  # ES comes back: purges and confirms
        assert await wait_for(lambda: _states(net, "ES") == cancelled)
        assert await wait_for(lambda: it.overdue(after) == [])
        report = _report(net, after)
        assert report["overdue_by_recipient"] == []
        assert report["totals"]["overdue"] == 0
    finally:
        await net.stop()
