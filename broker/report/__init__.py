"""The transparency report (``nbx report``): per sender and notice type, what this node
received and what became of it, counted from its audit log, with small counts suppressed;
as JSON or as one self-contained HTML page (docs/safeguards.md, "Transparency report").

It reads the store (:mod:`broker.sinks`) and never the network; it stands beside
:mod:`broker.node` in the layer table of docs/architecture.md.
"""

from broker.report.counts import (
    FORMAT,
    SUPPRESSED,
    THRESHOLD,
    Counts,
    Tally,
    count_entries,
    published,
    shown,
)
from broker.report.html import render_html
from broker.report.source import parse_time, report_from_store

__all__ = [
    "FORMAT",
    "SUPPRESSED",
    "THRESHOLD",
    "Counts",
    "Tally",
    "count_entries",
    "parse_time",
    "published",
    "render_html",
    "report_from_store",
    "shown",
]
