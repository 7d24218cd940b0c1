"""Every ``nbx bench`` mode runs end to end with tiny counts and reports sane figures.

Timings are not asserted (the machine is shared and noisy): only that each field is present and in
a plausible range, that every message was delivered, and that the CLI prints the table and JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from broker import devbroker
from broker.bench import broadcast, ops, raw, secure
from broker.bench.common import Target, percentile
from broker.bench.report import Report
from broker.cli import main

pytestmark = pytest.mark.e2e


@pytest.fixture
def target(
    kafka_bootstrap: str, idempotence_supported: bool, dev_broker: devbroker.DevBroker
) -> Target:
    return Target(kafka_bootstrap, "test", dev_broker.pid, idempotence_supported)


async def test_raw_and_secure_report_rates_cpu_and_rss(target: Target) -> None:
    """Both throughput modes deliver every message and report rates, CPU per delivery and RSS."""
    report = Report(broker="test", cores=2)
    report.raw = await raw.run(target, messages=20, repeats=2, concurrency=4, warmup=5)
    report.secure = await secure.run(target, messages=20, repeats=2, concurrency=4, warmup=5)
    for r in (report.raw, report.secure):
        assert len(r.deliveries_per_s_runs) == 2
        assert all(rate > 0 for rate in r.deliveries_per_s_runs)
        assert r.producer_cpu_ms_per_delivery >= 0
        assert r.consumer_peak_rss_mb is not None
        assert 10 < r.consumer_peak_rss_mb < 1000
        assert 2000 < r.payload_bytes < 4096
    assert report.ratio is not None
    assert report.ratio > 0
    # four publishes in flight share signatures, and the daemon stored every one of them
    assert report.raw.messages_per_signature is None
    assert report.secure.messages_per_signature is not None
    assert 1 < report.secure.messages_per_signature <= 4
    data = report.to_json()
    assert data["secure_over_raw"] == round(report.ratio, 3)
    assert "secure / raw" in report.table()
    assert "messages per signature" in report.table()


async def test_broadcast_reports_latency_percentiles(target: Target) -> None:
    """A small broadcast is stored at every recipient and reports p50 <= p99 <= max."""
    r = await broadcast.run(target, recipients=5, notices_count=3, hosts=2, warmup=1)
    assert r.recipients == 5
    assert r.notices == 3
    assert r.hosts == 2
    assert 0 < r.latency_p50_ms <= r.latency_p99_ms <= r.latency_max_ms
    assert len(r.latencies_ms) == 3  # every measured broadcast, the maximum among them
    assert max(r.latencies_ms) == r.latency_max_ms
    assert r.publisher_cpu_ms_per_broadcast >= 0
    assert r.excluded_or_failed == 0
    assert len(r.host_peak_rss_mb) == 2
    # with review (the default): every notice is approved once stored everywhere, and becomes
    # actionable at every recipient only after it was stored
    assert r.review
    assert r.actionable_p50_ms is not None
    assert r.actionable_p99_ms is not None
    assert r.approval_p99_ms is not None
    assert r.latency_p50_ms < r.actionable_p50_ms <= r.actionable_p99_ms
    assert 0 < r.approval_p99_ms <= r.actionable_p99_ms


async def test_broadcast_without_review_reports_no_actionable_time(target: Target) -> None:
    """--no-review: a network without a reviewer, nothing to approve, no actionable figures."""
    r = await broadcast.run(target, recipients=3, notices_count=2, hosts=1, warmup=1, review=False)
    assert r.notices == 2
    assert not r.review
    assert (r.actionable_p50_ms, r.actionable_p99_ms, r.approval_p99_ms) == (None, None, None)


# timings of Python code against C code: coverage's tracer would slow only the Python side
@pytest.mark.no_cover
def test_ops_lists_every_step() -> None:
    """The per-operation table covers each step of the secure path with a positive cost."""
    costs = ops.run(rounds=3, audience=3)
    rows = {o.op: o.us for o in costs}
    for op in ("decide (1 recipient)", "seal (audience 1)", "open_package (audience 1)",
               "validate_view", "receipt seal + package_for, 1 answer"):  # fmt: skip
        assert rows[op] > 0
    # the work docs/architecture.md section 3 requires of each delivery is listed and summed
    required = [o for o in costs if o.required]
    names = {o.op for o in required}
    assert {"required: batch signature, per message (32 per batch)",
            "required: batch signature check, per message (32 per batch)",
            "required: HPKE encrypt (package)", "required: HPKE decrypt (package)",
            "  per message, 100 in one transaction"} <= names  # fmt: skip
    assert all(o.us > 0 for o in required)
    # a signature shared by 32 costs each message less than a signature of its own (about a
    # quarter on a quiet machine; only "less" is asserted: timings on a loaded machine are noisy,
    # and one signature per batch is proved by counting in tests/node/test_signer.py)
    assert (
        rows["required: batch signature, per message (32 per batch)"]
        < rows["Ed25519 sign (one statement alone)"]
    )
    # the two sides' whole cost per message, in process, is measured
    assert rows["publish to 1 recipient, whole call (no broker)"] > 0
    assert rows["daemon: open, check, store, per record (no broker)"] > 0
    total = rows["required per delivery (sum of the required rows)"]
    assert total == pytest.approx(sum(o.us for o in required), abs=0.1)
    # one receipt message answers a whole batch: per answer it costs a fraction of a single one
    assert (
        0
        < rows["  per answer, 200 answers in one receipt"]
        < rows["receipt seal + package_for, 1 answer"]
    )


def test_percentile_is_nearest_rank() -> None:
    """p99 of 50 samples is the largest; p50 of 1..4 is 2."""
    assert percentile(list(range(1, 51)), 99) == 50
    assert percentile([1, 2, 3, 4], 50) == 2


def test_cli_prints_json(kafka_bootstrap: str) -> None:
    """``nbx bench raw --json`` on a given broker prints the report as JSON."""
    result = CliRunner().invoke(
        main,
        ["bench", "raw", "--bootstrap", kafka_bootstrap, "--messages", "10", "--repeats", "1",
         "--warmup", "2", "--concurrency", "2", "--json", "--no-idempotence"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # the progress lines went to stderr, not into the JSON
    assert data["raw"]["messages"] == 10
    assert data["secure"] is None
    lines = result.stderr.splitlines()
    assert lines[0] == "nbx: bench: raw (10 messages x 1 windows) ..."
    assert lines[-1].startswith("nbx: bench: raw (10 messages x 1 windows) done in ")


def test_host_settle_heap_freezes_start_up_and_still_collects_cycles() -> None:
    """The broadcast host freezes its start-up heap and collects less often, yet a reference
    cycle made afterwards is still freed (run in a child: the settings are process-wide)."""
    code = """
import gc, weakref
from broker.bench.host import settle_heap
class Node: pass
settle_heap()
assert gc.get_freeze_count() > 0, gc.get_freeze_count()
assert gc.get_threshold() == (10_000, 20, 100), gc.get_threshold()
a, b = Node(), Node()
a.other, b.other = b, a
freed = []
weakref.finalize(a, freed.append, "a")
del a, b
gc.collect()
assert freed == ["a"], freed
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
