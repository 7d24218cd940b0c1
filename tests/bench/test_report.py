"""The bench report's derived figures: the ratio and the bound the required work sets on it."""

from __future__ import annotations

import pytest

from broker.bench.report import OpCost, Report, ThroughputResult


def _throughput(mode: str, rate: float, cpu_ms: float, broker_ms: float) -> ThroughputResult:
    return ThroughputResult(
        mode=mode,
        messages=1000,
        repeats=3,
        concurrency=32,
        payload_bytes=2200,
        deliveries_per_s=rate,
        deliveries_per_s_runs=[rate],
        cpu_ms_per_delivery=cpu_ms,
        producer_cpu_ms_per_delivery=cpu_ms / 2,
        consumer_cpu_ms_per_delivery=cpu_ms / 2,
        broker_cpu_ms_per_delivery=broker_ms,
        consumer_peak_rss_mb=30.0,
    )


def _report(required_us: list[float], *, raw_rate: float = 4000.0) -> Report:
    report = Report(broker="test", cores=2)
    report.raw = _throughput("raw", raw_rate, 0.10, 0.02)
    report.secure = _throughput("secure", 500.0, 2.8, 0.4)
    report.ops = [OpCost("not required", 999.0)] + [
        OpCost(f"required {i}", us, required=True) for i, us in enumerate(required_us)
    ]
    return report


def test_bound_is_cores_over_required_plus_raw_cost_against_raw_rate() -> None:
    """1.88 ms required + 0.12 ms raw Kafka = 2 ms a delivery: 2 cores give 1 000/s, a quarter
    of raw's 4 000/s; rows not marked required do not count."""
    report = _report([1000.0, 880.0])
    assert report.required_ms_per_delivery == pytest.approx(1.88)
    assert report.ratio_bound == pytest.approx(0.25)
    assert report.ratio == pytest.approx(0.125)
    data = report.to_json()
    assert data["secure_over_raw_bound"] == 0.25
    assert data["required_ms_per_delivery"] == 1.88
    assert "bound set by the required work (1.880 ms CPU per delivery" in report.table()
    assert "this run reaches 50% of it" in report.table()


def test_bound_never_exceeds_one() -> None:
    """Cheap required work cannot make secure faster than raw's own round trips."""
    assert _report([10.0], raw_rate=100.0).ratio_bound == 1.0


def test_bound_needs_raw_and_required_rows() -> None:
    """Without the raw mode or without required rows there is no bound (and no table line)."""
    no_ops = _report([])
    assert no_ops.required_ms_per_delivery is None
    assert no_ops.ratio_bound is None
    assert no_ops.to_json()["secure_over_raw_bound"] is None
    assert "bound set by" not in no_ops.table()
    no_raw = _report([500.0])
    no_raw.raw = None
    assert no_raw.ratio_bound is None


def test_secure_against_raw_store_shows_the_cost_of_security_alone() -> None:
    """With raw+store in the report, the table and JSON give secure / raw+store beside
    secure / raw, and label the rows by store and replicas."""
    report = _report([500.0])
    report.raw_store = _throughput("raw+store", 1000.0, 0.3, 0.05)
    report.raw_store.sink = "postgresql"
    report.raw_store.db_cpu_ms_per_delivery = 0.1
    report.secure = _throughput("secure", 500.0, 2.8, 0.4)
    report.secure.sink = "postgresql"
    report.secure.replicas = 2
    report.secure.partitions = 2
    report.secure.replica_deliveries = [510, 490]
    assert report.ratio_store == pytest.approx(0.5)
    assert report.to_json()["secure_over_raw_store"] == 0.5
    table = report.table()
    assert (
        "secure / raw+store deliveries per second: 0.500 (the cost of security alone; "
        "both on postgresql)" in table
    )
    assert "secure / raw deliveries per second: 0.125 (target >= 0.5)" in table
    assert "raw+store postgresql" in table
    assert "secure postgresql x2" in table
    assert "deliveries per replica over the run (warm-up included): 510, 490" in table


def test_no_raw_store_no_store_ratio() -> None:
    """Without raw+store there is no secure / raw+store figure."""
    report = _report([500.0])
    assert report.ratio_store is None
    assert report.to_json()["secure_over_raw_store"] is None
    assert "raw+store" not in report.table()
