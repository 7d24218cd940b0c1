"""NodeMetrics on its own: own keys' expiry from the directory, lag, histograms, the publisher's
counter, and the label rule (codes only)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import generate_latest

from broker.keys.directory import Revocation
from broker.node.metrics import COMMIT_BUCKETS, PROCESSING_BUCKETS, NodeMetrics
from broker.node.runtime import load_node
from broker.node.stats import DaemonStats
from broker.vocab import Metric
from tests.metrics.helpers import samples
from tests.node.helpers import memory_net

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_key_expiry_lists_the_bureaus_valid_keys_with_an_end(tmp_path: Path) -> None:
    """From the verified directory of a provisioned node: FR's signing key ending in 10.5 days
    and its encryption key ending in 3 days are reported in days (labels use and key id), a
    valid key without an end as +Inf (so max by use does not alert while an old key runs out
    its overlap); a key already past its end and a revoked one are not; another bureau's keys
    never are."""
    net = memory_net(tmp_path, ["IT", "FR"])
    directory = load_node(net.configs["FR"]).directory
    assert directory.current is not None
    record = directory.current.bureau("FR")
    sign = next(k for k in record.keys if k.use == "sign")
    enc = next(k for k in record.keys if k.use == "encrypt")
    start = NOW - timedelta(days=30)
    keys = (
        sign.model_copy(update={"not_before": start, "not_after": NOW + timedelta(days=10.5)}),
        enc.model_copy(update={"not_before": start, "not_after": NOW + timedelta(days=3)}),
        enc.model_copy(update={"kid": "old", "not_before": start, "not_after": NOW}),
        enc.model_copy(
            update={
                "kid": "revoked",
                "not_before": start,
                "not_after": NOW + timedelta(days=1),
                "status": "revoked",
                "revocation": Revocation(at=NOW - timedelta(days=1), reason="key-compromise"),
            }
        ),
        enc.model_copy(update={"kid": "open-ended", "not_before": start, "not_after": None}),
    )
    changed = record.model_copy(update={"keys": keys})
    metrics = NodeMetrics("FR", clock=lambda: NOW)
    metrics.directory = SimpleNamespace(current=SimpleNamespace(bureau=lambda cc: changed))
    assert sorted(metrics.key_expiry()) == sorted(
        [("sign", sign.kid, 10.5), ("encrypt", enc.kid, 3.0), ("encrypt", "open-ended", math.inf)]
    )
    got = samples(generate_latest(metrics.registry).decode())
    assert got[(Metric.KEY_EXPIRY_DAYS, (("key_id", enc.kid), ("use", "encrypt")))] == 3.0
    assert got[(Metric.KEY_EXPIRY_DAYS, (("key_id", sign.kid), ("use", "sign")))] == 10.5
    assert got[(Metric.KEY_EXPIRY_DAYS, (("key_id", "open-ended"), ("use", "encrypt")))] == math.inf
    # the real followed directory: serial, and FR's own keys (a provisioned network's never end)
    metrics.directory = directory
    metrics.clock = lambda: datetime.now(UTC)
    got = samples(generate_latest(metrics.registry).decode())
    assert got[(Metric.DIRECTORY_SERIAL, ())] == directory.serial >= 1
    own = {
        (dict(k[1])["use"], dict(k[1])["key_id"]): v
        for k, v in got.items()
        if k[0] == Metric.KEY_EXPIRY_DAYS
    }
    assert own == {(k.use, k.kid): math.inf for k in record.keys}


def test_a_directory_without_the_bureau_or_not_loaded_reports_no_expiry() -> None:
    """Nothing attached, a directory not loaded yet, or one that does not list the bureau."""
    metrics = NodeMetrics("FR")
    assert metrics.key_expiry() == []

    def missing(cc: str) -> object:
        raise KeyError(cc)

    metrics.directory = SimpleNamespace(current=SimpleNamespace(bureau=missing))
    assert metrics.key_expiry() == []
    metrics.directory = SimpleNamespace(current=None)
    assert metrics.key_expiry() == []


def test_instruments_record_what_the_hot_path_reports() -> None:
    """consumed() counts per topic and observes the processing histogram; committed() the
    commit histogram; lag() never goes below 0; sent() counts the publisher's outcomes; the
    daemon's counts are read from its DaemonStats at scrape time."""
    metrics = NodeMetrics("FR")
    metrics.consumed("nbx.inbox.FR", 0.0003)
    metrics.consumed("nbx.inbox.FR", 0.002)
    metrics.consumed("nbx.receipts.FR", 0.0001)
    metrics.committed(0.004)
    metrics.lag("nbx.inbox.FR", 0, 7)
    metrics.lag("nbx.receipts.FR", 0, -2)  # a watermark older than the position
    metrics.sent("sent")
    metrics.sent("sent")
    metrics.sent("failed")
    stats = DaemonStats(delivered=5, quarantined=2, receipts_sent=4, receipts_received=1)
    stats.reasons.update({"replay": 1, "signature": 1})
    metrics.stats = stats
    got = samples(generate_latest(metrics.registry).decode())
    assert got[(Metric.RECORDS_CONSUMED, (("topic", "nbx.inbox.FR"),))] == 2
    assert got[(Metric.RECORDS_CONSUMED, (("topic", "nbx.receipts.FR"),))] == 1
    processing = Metric.PROCESSING_SECONDS
    assert got[(f"{processing}_count", ())] == 3
    assert got[(f"{processing}_bucket", (("le", "0.0005"),))] == 2
    assert got[(f"{processing}_bucket", (("le", "+Inf"),))] == 3
    assert got[(f"{Metric.STORE_COMMIT_SECONDS}_bucket", (("le", "0.005"),))] == 1
    assert got[(Metric.CONSUMER_LAG, (("partition", "0"), ("topic", "nbx.inbox.FR")))] == 7
    assert got[(Metric.CONSUMER_LAG, (("partition", "0"), ("topic", "nbx.receipts.FR")))] == 0
    assert got[(Metric.PUBLISHED, (("status", "sent"),))] == 2
    assert got[(Metric.PUBLISHED, (("status", "failed"),))] == 1
    assert got[(Metric.DELIVERED, ())] == 5
    assert got[(Metric.QUARANTINED, (("reason", "replay"),))] == 1
    assert got[(Metric.QUARANTINED, (("reason", "signature"),))] == 1
    assert got[(Metric.RECEIPTS_SENT, ())] == 4
    assert got[(Metric.RECEIPTS_RECEIVED, ())] == 1
    assert list(PROCESSING_BUCKETS) == sorted(PROCESSING_BUCKETS)
    assert list(COMMIT_BUCKETS) == sorted(COMMIT_BUCKETS)


def test_every_exported_family_is_a_metric_name_and_labels_are_codes() -> None:
    """Every family a fully attached NodeMetrics exports is one of broker.vocab.Metric, and
    every Metric is exported (the two cannot drift); label names are from the allowed set."""
    from prometheus_client.parser import text_string_to_metric_families

    metrics = NodeMetrics("FR")
    metrics.stats = DaemonStats()
    metrics.stats.reasons["replay"] = 1
    metrics.directory = SimpleNamespace(serial=4)
    metrics.consumed("nbx.inbox.FR", 0.001)
    metrics.lag("nbx.inbox.FR", 0, 0)
    metrics.sent("sent")
    families = list(text_string_to_metric_families(generate_latest(metrics.registry).decode()))
    exported = set()
    for family in families:
        name = family.name + ("_total" if family.type == "counter" else "")
        exported.add(name)
        for s in family.samples:
            assert set(s.labels) <= {
                "topic",
                "partition",
                "reason",
                "status",
                "use",
                "key_id",
                "version",
                "python",
                "le",
            }, s
    assert exported == set(Metric)
