"""The report's HTML page in a real headless browser (Chromium): it renders offline, and every
figure it shows equals the JSON's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker.report import count_entries, published, render_html
from broker.sinks.base import OverdueRow
from broker.vocab import AuditAction, MessageKind, NoticeState, PurgeReason, Reason
from tests.report.browser import dump_dom, figures, png_pixels, screenshot
from tests.report.test_counts import Log, at

pytestmark = pytest.mark.process  # starts the browser: not in `make quick`

#: the bars' colour (html.py's CSS)
BAR = (0x3B, 0x6E, 0xA5)


def leaves(obj: Any, path: str = "") -> dict[str, Any]:
    """Every figure of a report part by its dot path (lists by index)."""
    items: list[tuple[str, Any]]
    if isinstance(obj, dict):
        items = list(obj.items())
    elif isinstance(obj, list):
        items = [(str(i), v) for i, v in enumerate(obj)]
    else:
        return {path: obj}
    out: dict[str, Any] = {}
    for k, v in items:
        out |= leaves(v, f"{path}.{k}" if path else k)
    return out


def expected_figures(report: dict[str, Any]) -> dict[str, str]:
    """What the page must show for each figure of the JSON: numbers as JSON writes them,
    suppressed counts as "<5", absent review times as "-"."""
    parts = {
        "rows": [
            {k: v for k, v in row.items() if k not in ("sender", "notice_type")}
            for row in report["rows"]
        ],
        "totals": report["totals"],
        "overdue_by_recipient": [{"overdue": o["overdue"]} for o in report["overdue_by_recipient"]],
    }
    return {k: "-" if v is None else str(v) for k, v in leaves(parts).items()}


def sample_report() -> dict[str, Any]:
    """A report with big and small counts in every table, a quarantine and an overdue."""
    log = Log()
    for i in range(12):
        log.publish("IT", f"IT-{i}")
    for i in range(3):
        log.publish("DE", f"DE-{i}", "blue")
    for i in range(6):
        log.review("IT", f"IT-{i}", "refused", "art3" if i else "art2,art3", own=True)
        log.purge("IT", f"IT-{i}", PurgeReason.REFUSED, MessageKind.REVIEW)
    log.review("DE", "DE-0", "approved", own=True, notice_type="blue")
    for _ in range(7):
        log.add(AuditAction.QUARANTINE, sender="IT", notice_id=None, reason=Reason.SIGNATURE)
    log.add(
        AuditAction.REJECTION, sender="DE", notice_id="DE-9", notice_type="blue",
        kind=MessageKind.PUBLISH, outcome="rejected", reason=Reason.DECLINED_BY_POLICY,
    )  # fmt: skip
    overdue: list[OverdueRow] = [
        {
            "notice_id": f"XR-{i}",
            "notice_type": "red",
            "recipient": "FR",
            "msg_id": f"o{i}",
            "kind": MessageKind.REVIEW,
            "sent_at": at(1),
            "deadline": at(2),
        }
        for i in range(2)
    ]
    states = {("IT", f"IT-{i}"): NoticeState.ACTIONABLE.value for i in range(6, 12)}
    tally = count_entries(log.entries, states, overdue, own="XR")
    return published(tally, bureau="XR", since=at(0), until=at(500), generated_at=at(500))


def test_the_page_is_self_contained() -> None:
    """No script, no stylesheet, image, font or frame to fetch: it opens offline."""
    page = render_html(sample_report())
    for needle in ("<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import"):
        assert needle not in page, needle
    # the only URL is the SVG namespace, a name that is never fetched
    assert page.count("http") == page.count('xmlns="http://www.w3.org/2000/svg"') > 0


def test_chromium_renders_the_figures_of_the_json(tmp_path: Path) -> None:
    """Chromium loads the page; every table cell and bar label it rendered equals the JSON's
    figure at the same path, and every figure of the JSON is on the page."""
    report = sample_report()
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    shown = figures(dump_dom(page, tmp_path / "profile"))

    expected = expected_figures(report)
    assert shown.cells == expected
    # spot checks that the comparison is about the right things
    assert shown.cells["rows.0.received"] == "<5"  # DE blue: 3
    assert shown.cells["rows.1.received"] == "12"  # IT red
    assert shown.cells["rows.1.refused.art3"] == "6"
    assert shown.cells["rows.1.refused.art2"] == "<5"
    assert shown.cells["totals.quarantined.signature"] == "7"
    assert shown.cells["overdue_by_recipient.0.overdue"] == "<5"
    # IT-0..5 arrived at minutes 1..6 and were reviewed at 16, 18, ... 26: 15 to 20 minutes
    assert shown.cells["rows.1.review_time.median_s"] == "1050.0"
    assert shown.cells["rows.1.review_time.p95_s"] == "1200.0"
    assert shown.cells["rows.0.review_time.median_s"] == "-"  # one review: not shown
    # every bar label is the same figure as the table's
    assert shown.bars
    assert all(expected[k] == v for k, v in shown.bars.items()), shown.bars
    assert {"totals.refused.art3", "totals.purged.refused", "rows.1.received"} <= set(shown.bars)


def test_chromium_draws_the_page_and_its_bars(tmp_path: Path) -> None:
    """A screenshot is not blank: text and the bars' colour are there."""
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_report()), encoding="utf-8")
    png = tmp_path / "report.png"
    screenshot(page, png, tmp_path / "profile", size=(800, 600))
    width, height, pixels = png_pixels(png.read_bytes())
    assert (width, height) == (800, 600)
    dark = sum(1 for p in pixels if max(p) < 100)  # text
    bar = sum(1 for p in pixels if all(abs(a - b) <= 8 for a, b in zip(p, BAR, strict=True)))
    assert dark > 500, dark
    assert bar > 500, bar
