"""The transparency report as one self-contained HTML page: inline CSS, inline SVG bar charts,
no script, no font, no image and no link to load, so it opens offline in any browser.

Every figure on the page is a cell or a bar label marked ``data-k`` with its path in the JSON
report (``rows.0.refused.art3``, ``totals.received``): the page shows exactly the JSON's values,
suppressed counts included (tests/report/test_report_browser.py reads them back from Chromium).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import jinja2

from broker.report.counts import THRESHOLD
from broker.vocab import Ground, ResponseKind

__all__ = ["Bar", "Cell", "Chart", "Table", "render_html", "text_of"]

#: what an absent figure (a review time from fewer than THRESHOLD reviews) reads on the page
ABSENT: Final = "-"

_GROUND_TITLES: Final = {
    Ground.CRITERIA: "criteria",
    Ground.ART2: "Art. 2",
    Ground.ART3: "Art. 3",
    Ground.REFUGEE: "refugee",
    Ground.OTHER: "other",
}


def text_of(value: Any) -> str:
    """How a JSON figure reads on the page: a number as JSON writes it, a suppressed count as
    ``<5``, an absent one as ``-``."""
    if value is None:
        return ABSENT
    return str(value)


@dataclass(frozen=True)
class Cell:
    """One table cell; ``key`` is the JSON path of the figure it shows (None: a label)."""

    text: str
    key: str | None = None


@dataclass(frozen=True)
class Table:
    """A titled table."""

    title: str
    note: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    totals: bool = True  # the last row is the totals line


@dataclass(frozen=True)
class Bar:
    """One bar: its label, the figure it shows (``key``: its JSON path), its length in pixels
    and whether the figure is suppressed (drawn hatched, at the threshold's length)."""

    label: str
    text: str
    key: str
    width: float
    suppressed: bool


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart."""

    title: str
    bars: tuple[Bar, ...]

    @property
    def height(self) -> int:
        """The SVG's height in pixels."""
        return 12 + 24 * len(self.bars)


#: the bar area of a chart, in pixels
_BAR_SPACE: Final = 280.0


def _label(row: dict[str, Any]) -> tuple[Cell, Cell]:
    return Cell(row["sender"] or "unknown"), Cell(row["notice_type"] or "unknown")


def _fig(value: Any, key: str) -> Cell:
    return Cell(text_of(value), key)


def _figure_rows(
    report: dict[str, Any], columns: Sequence[tuple[str, str]]
) -> tuple[tuple[Cell, ...], ...]:
    """One line per row of the report and a totals line, each with the figures at the
    ``columns``' paths (relative to a row, dot-separated)."""

    def value(obj: dict[str, Any], path: str) -> Any:
        for part in path.split("."):
            obj = obj[part]
        return obj

    lines = [
        (*_label(row), *(_fig(value(row, p), f"rows.{i}.{p}") for _, p in columns))
        for i, row in enumerate(report["rows"])
    ]
    totals = report["totals"]
    lines.append(
        (Cell("all"), Cell("all"), *(_fig(value(totals, p), f"totals.{p}") for _, p in columns))
    )
    return tuple(lines)


def tables(report: dict[str, Any]) -> list[Table]:
    """The page's tables, in order."""
    main_cols = [
        ("received", "received"),
        ("actionable", "actionable"),
        ("refusals", "refusals"),
        ("declined by policy", "declined_by_policy"),
        ("blocked", "blocked"),
        ("deleted on challenge", "deleted"),
        ("overdue purge confirmations", "overdue"),
    ]
    ground_cols = [(_GROUND_TITLES[g], f"refused.{g.value}") for g in Ground]
    purge_cols = [(r, f"purged.{r}") for r in report["totals"]["purged"]]
    quarantine_cols = [(r, f"quarantined.{r}") for r in report["quarantine_reasons"]]
    review_cols = [
        ("reviews", "review_time.reviews"),
        ("median (s)", "review_time.median_s"),
        ("95th percentile (s)", "review_time.p95_s"),
    ]
    response_cols = [(k.value, f"responses.{k.value}") for k in ResponseKind]
    by = ("sender", "notice type")
    out = [
        Table(
            "Messages by sender and notice type",
            "Messages this node received and what became of them.",
            (*by, *(t for t, _ in main_cols)),
            _figure_rows(report, main_cols),
        ),
        Table(
            "Refused by ground",
            "Reviewers' refusals; a refusal on several grounds counts under each.",
            (*by, *(t for t, _ in ground_cols)),
            _figure_rows(report, ground_cols),
        ),
        Table(
            "Purged by reason",
            "Notices whose personal data this node purged.",
            (*by, *(t for t, _ in purge_cols)),
            _figure_rows(report, purge_cols),
        ),
    ]
    if quarantine_cols:
        out.append(
            Table(
                "Quarantined by reason",
                "Records this node refused before reading them.",
                (*by, *(t for t, _ in quarantine_cols)),
                _figure_rows(report, quarantine_cols),
            )
        )
    out.append(
        Table(
            "Review times",
            f"From receiving a message to this node's review decision; "
            f"shown from {THRESHOLD} reviews on.",
            (*by, *(t for t, _ in review_cols)),
            _figure_rows(report, review_cols),
        )
    )
    out.append(
        Table(
            "Answers received by kind",
            "Responses to notices (located, arrested...) this node received, by the bureau that "
            "answered and the notice's type.",
            ("from", "notice type", *(t for t, _ in response_cols)),
            _figure_rows(report, response_cols),
        )
    )
    overdue = report["overdue_by_recipient"]
    out.append(
        Table(
            "Overdue purge confirmations by recipient",
            "Cancellations, erasures, refusals and deletions this node sent that the recipient "
            "has not confirmed with a signed purged receipt by the deadline."
            if overdue
            else "None.",
            ("recipient", "overdue"),
            tuple(
                (Cell(o["recipient"]), _fig(o["overdue"], f"overdue_by_recipient.{i}.overdue"))
                for i, o in enumerate(overdue)
            ),
            totals=False,
        )
    )
    return out


def _chart(title: str, items: Sequence[tuple[str, Any, str]]) -> Chart:
    numbers = [v for _, v, _ in items if isinstance(v, int)]
    top = max([THRESHOLD, *numbers])
    bars = []
    for label, value, key in items:
        suppressed = not isinstance(value, int)
        n = THRESHOLD if suppressed else value
        bars.append(Bar(label, text_of(value), key, _BAR_SPACE * n / top, suppressed))
    return Chart(title, tuple(bars))


def charts(report: dict[str, Any]) -> list[Chart]:
    """The page's bar charts (of the totals, and of messages received per row)."""
    totals = report["totals"]
    out = [
        _chart(
            "Messages received",
            [
                (f"{r['sender'] or 'unknown'} {r['notice_type'] or 'unknown'}", r["received"], k)
                for i, r in enumerate(report["rows"])
                for k in [f"rows.{i}.received"]
            ],
        ),
        _chart(
            "Refused by ground",
            [
                (_GROUND_TITLES[g], totals["refused"][g.value], f"totals.refused.{g.value}")
                for g in Ground
            ],
        ),
        _chart(
            "Purged by reason",
            [(r, v, f"totals.purged.{r}") for r, v in totals["purged"].items()],
        ),
    ]
    if report["quarantine_reasons"]:
        out.append(
            _chart(
                "Quarantined by reason",
                [(r, v, f"totals.quarantined.{r}") for r, v in totals["quarantined"].items()],
            )
        )
    if report["overdue_by_recipient"]:
        out.append(
            _chart(
                "Overdue purge confirmations by recipient",
                [
                    (o["recipient"], o["overdue"], f"overdue_by_recipient.{i}.overdue")
                    for i, o in enumerate(report["overdue_by_recipient"])
                ],
            )
        )
    return [c for c in out if c.bars]


_TEMPLATE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>NBX transparency report: {{ r.bureau }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #1a1a1a;
       padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
p.meta { color: #444; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; }
th { background: #eef1f5; text-align: left; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; background: #f6f6f6; }
p.note { color: #555; font-size: 0.9em; margin: 0.2em 0; }
svg text { font-family: system-ui, sans-serif; font-size: 12px; fill: #1a1a1a; }
rect.bar { fill: #3b6ea5; }
rect.bar.suppressed { fill: #c9d6e6; stroke: #3b6ea5; stroke-dasharray: 3 2; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 0.3em; }
</style>
</head>
<body>
<h1>Transparency report: {{ r.bureau }}</h1>
<p class="meta">Period: {{ r.since or "start of the audit log" }} to {{ r.until or "now" }}
(UTC, the end excluded). Generated {{ r.generated_at }}.</p>
<p class="note">Counts from 1 to {{ r.threshold - 1 }} read <b>{{ r.suppressed }}</b>.
The report holds bureau ids, notice types, reason codes and counts:
no notice, message or person.</p>
<div class="charts">
{% for c in charts %}
<figure>
<figcaption>{{ c.title }}</figcaption>
<svg xmlns="http://www.w3.org/2000/svg" width="{{ 150 + 280 + 50 }}" height="{{ c.height }}"
     role="img" aria-label="{{ c.title }}">
{% for b in c.bars %}
{% set y = 6 + 24 * loop.index0 %}
<text x="144" y="{{ y + 14 }}" text-anchor="end">{{ b.label }}</text>
<rect class="bar{{ ' suppressed' if b.suppressed }}" x="150" y="{{ y }}"
      width="{{ '%.1f' % b.width }}" height="18"></rect>
<text x="{{ '%.1f' % (154 + b.width) }}" y="{{ y + 14 }}" data-k="{{ b.key }}">{{ b.text }}</text>
{% endfor %}
</svg>
</figure>
{% endfor %}
</div>
{% for t in tables %}
<h2>{{ t.title }}</h2>
<p class="note">{{ t.note }}</p>
{% if t.rows %}
<table>
<thead><tr>{% for h in t.headers %}<th scope="col">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}
<tr{{ ' class="total"'|safe if t.totals and loop.last }}>
{% for c in row %}{% if c.key %}<td class="n" data-k="{{ c.key }}">{{ c.text }}</td>
{%- else %}<td>{{ c.text }}</td>{% endif %}{% endfor %}
</tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% endfor %}
</body>
</html>
"""


def render_html(report: dict[str, Any]) -> str:
    """The page of a published report (:func:`broker.report.counts.published`)."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(_TEMPLATE)
    return template.render(r=report, tables=tables(report), charts=charts(report))
