"""Benchmark results: one dataclass per mode, rendered as a readable table or as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ThroughputResult:
    """Deliveries per second of one mode (``raw`` or ``secure``), medians over the repeats.

    CPU figures are per delivery and cover every NBX process (producer side + consumer side);
    the broker's own CPU is reported apart.
    """

    mode: str
    messages: int
    repeats: int
    concurrency: int
    payload_bytes: int
    deliveries_per_s: float
    deliveries_per_s_runs: list[float]
    cpu_ms_per_delivery: float | None
    producer_cpu_ms_per_delivery: float
    consumer_cpu_ms_per_delivery: float | None
    broker_cpu_ms_per_delivery: float | None
    consumer_peak_rss_mb: float | None
    frame_bytes: int | None = None
    #: secure only: statements per Ed25519 signature over the run (concurrent publishes share one)
    messages_per_signature: float | None = None
    #: the store (``sqlite`` or ``postgresql``; ``None``: raw, no store)
    sink: str | None = None
    #: consumer processes of the receiving side (secure: daemon replicas of one bureau)
    replicas: int = 1
    #: partitions of the consumed topic
    partitions: int = 1
    #: CPU of the PostgreSQL server (postmaster and backends) per delivery, when it is ours
    db_cpu_ms_per_delivery: float | None = None
    #: secure: deliveries each daemon replica logged over the whole run (warm-up included)
    replica_deliveries: list[int] = field(default_factory=list)
    #: secure: notices published over the run, and deliveries in the store at its end
    sent: int | None = None
    stored: int | None = None

    @property
    def label(self) -> str:
        """``raw``, ``raw+store sqlite``, ``secure postgresql x2`` ..."""
        text = self.mode if self.sink is None else f"{self.mode} {self.sink}"
        return text if self.replicas == 1 else f"{text} x{self.replicas}"


@dataclass
class BroadcastResult:
    """Latency from the publish call to stored at every recipient, one broadcast at a time."""

    recipients: int
    notices: int
    hosts: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    publish_call_p50_ms: float
    publisher_cpu_ms_per_broadcast: float
    receiver_cpu_ms_per_delivery: float | None
    broker_cpu_ms_per_broadcast: float | None
    host_peak_rss_mb: list[float | None]
    excluded_or_failed: int
    setup_s: float
    latencies_ms: list[float] = field(default_factory=list)  # every measured broadcast, in order
    #: the network had a reviewer (review rules in force, ``post``): notices stored
    #: pending-review, approved at once once stored everywhere
    review: bool = False
    #: publish -> the approval stored at every recipient (the notice actionable everywhere)
    actionable_p50_ms: float | None = None
    actionable_p99_ms: float | None = None
    #: the reviewer's approval call -> stored at every recipient
    approval_p99_ms: float | None = None
    #: the recipients' stores (``sqlite`` files or ``postgresql`` databases on one server)
    sink: str = "sqlite"
    #: the PostgreSQL server's CPU per delivery (notice and approval), when it is ours
    db_cpu_ms_per_delivery: float | None = None


@dataclass
class OpCost:
    """The cost of one operation, median of its rounds, in microseconds."""

    op: str
    us: float
    note: str = ""
    #: work docs/architecture.md section 3 requires of every delivery (see ops.py)
    required: bool = False


@dataclass
class Report:
    """Everything one ``nbx bench`` run measured."""

    broker: str
    cores: int
    raw: ThroughputResult | None = None
    #: the raw consumer writing each record into the same store as secure's (one transaction
    #: per batch): the cost of durability without the cost of security
    raw_store: ThroughputResult | None = None
    secure: ThroughputResult | None = None
    broadcast: BroadcastResult | None = None
    ops: list[OpCost] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """Secure / raw deliveries per second (target: >= 0.5)."""
        if self.raw is None or self.secure is None or not self.raw.deliveries_per_s:
            return None
        return self.secure.deliveries_per_s / self.raw.deliveries_per_s

    @property
    def ratio_store(self) -> float | None:
        """Secure / raw+store deliveries per second (the cost of security alone)."""
        if self.raw_store is None or self.secure is None or not self.raw_store.deliveries_per_s:
            return None
        return self.secure.deliveries_per_s / self.raw_store.deliveries_per_s

    @property
    def required_ms_per_delivery(self) -> float | None:
        """CPU the required work of one delivery costs (the ``required`` ops rows), in ms."""
        rows = [o.us for o in self.ops if o.required]
        return sum(rows) / 1000 if rows else None

    @property
    def ratio_bound(self) -> float | None:
        """The highest secure / raw ratio this machine allows with the required work.

        Every secure delivery costs at least the required work plus the CPU the raw baseline
        spends per delivery (client and broker); with every core busy that gives at most
        ``cores / cost`` deliveries per second, and never more than raw (the same round trips).
        Needs ``raw`` and ``ops`` of one run (``nbx bench all``).
        """
        required = self.required_ms_per_delivery
        raw = self.raw
        if required is None or raw is None or not raw.deliveries_per_s:
            return None
        cost_ms = required + (raw.cpu_ms_per_delivery or 0) + (raw.broker_cpu_ms_per_delivery or 0)
        return min(1.0, self.cores * 1000 / cost_ms / raw.deliveries_per_s)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every figure."""
        out = asdict(self)
        out["secure_over_raw"] = None if self.ratio is None else round(self.ratio, 3)
        ratio_store = self.ratio_store
        out["secure_over_raw_store"] = None if ratio_store is None else round(ratio_store, 3)
        bound = self.ratio_bound
        out["secure_over_raw_bound"] = None if bound is None else round(bound, 3)
        required = self.required_ms_per_delivery
        out["required_ms_per_delivery"] = None if required is None else round(required, 3)
        return out

    def table(self) -> str:
        """A readable multi-line summary."""
        lines = [f"broker: {self.broker}   cores: {self.cores}   (medians over the repeats)"]
        rows = [r for r in (self.raw, self.raw_store, self.secure) if r is not None]
        if rows:
            width = max(8, *(len(r.label) for r in rows))
            lines.append(
                f"{'mode':{width}} {'msgs':>6} {'deliv/s':>9} {'cpu ms/dlv':>11} {'prod ms':>8} "
                f"{'cons ms':>8} {'broker ms':>9} {'db ms':>7} {'cons RSS MB':>11}"
            )
            for r in rows:
                lines.append(
                    f"{r.label:{width}} {r.messages:>6} {r.deliveries_per_s:>9.0f} "
                    f"{_f(r.cpu_ms_per_delivery, 11, 3)} {r.producer_cpu_ms_per_delivery:>8.3f} "
                    f"{_f(r.consumer_cpu_ms_per_delivery, 8, 3)} "
                    f"{_f(r.broker_cpu_ms_per_delivery, 9, 3)} "
                    f"{_f(r.db_cpu_ms_per_delivery, 7, 3)} {_f(r.consumer_peak_rss_mb, 11, 1)}"
                )
            if any(r.replicas > 1 or r.partitions > 1 for r in rows):
                lines.append(
                    "cons ms: CPU of every consumer process (all replicas) per delivery; "
                    + ", ".join(f"{r.label}: {r.partitions} partition(s)" for r in rows)
                )
            for r in rows:
                if r.replicas > 1:
                    lines.append(
                        f"{r.label}: deliveries per replica over the run (warm-up included): "
                        + ", ".join(str(n) for n in r.replica_deliveries)
                        + f"; published {r.sent}, stored {r.stored}"
                    )
            if self.secure is not None and self.secure.messages_per_signature is not None:
                lines.append(
                    f"secure: {self.secure.messages_per_signature:.1f} messages per signature "
                    "(concurrent publishes share one)"
                )
            if self.ratio is not None:
                lines.append(
                    f"secure / raw deliveries per second: {self.ratio:.3f} (target >= 0.5)"
                )
            if self.ratio_store is not None and self.raw_store is not None:
                lines.append(
                    f"secure / raw+store deliveries per second: {self.ratio_store:.3f} "
                    f"(the cost of security alone; both on {self.raw_store.sink})"
                )
            bound = self.ratio_bound
            if bound is not None:
                share = ""
                if self.ratio is not None:
                    share = f"; this run reaches {self.ratio / bound:.0%} of it"
                lines.append(
                    f"bound set by the required work ({self.required_ms_per_delivery:.3f} ms CPU "
                    f"per delivery + raw's Kafka CPU, {self.cores} cores): {bound:.3f}{share}"
                )
        b = self.broadcast
        if b is not None:
            rss = ", ".join(_f(v, 0, 1).strip() for v in b.host_peak_rss_mb)
            lines += [
                f"broadcast to {b.recipients} bureaus, {b.notices} notices, {b.hosts} host "
                f"processes, stores: {b.sink} (setup {b.setup_s:.1f} s)",
                f"  publish -> stored at all: p50 {b.latency_p50_ms:.0f} ms, "
                f"p99 {b.latency_p99_ms:.0f} ms, max {b.latency_max_ms:.0f} ms "
                "(target p99 <= 1000)",
                f"  publish call p50 {b.publish_call_p50_ms:.0f} ms; publisher CPU "
                f"{b.publisher_cpu_ms_per_broadcast:.1f} ms per broadcast; receivers "
                f"{_f(b.receiver_cpu_ms_per_delivery, 0, 3).strip()} ms CPU per delivery; "
                f"broker {_f(b.broker_cpu_ms_per_broadcast, 0, 1).strip()} ms CPU per broadcast"
                + (
                    ""
                    if b.db_cpu_ms_per_delivery is None
                    else f"; PostgreSQL {b.db_cpu_ms_per_delivery:.3f} ms CPU per delivery"
                ),
                f"  host peak RSS MB: {rss}; excluded or failed recipients: {b.excluded_or_failed}",
            ]
            if b.review:
                lines.append(
                    f"  with review: publish -> actionable at all (approved at once): p50 "
                    f"{_f(b.actionable_p50_ms, 0, 0).strip()} ms, p99 "
                    f"{_f(b.actionable_p99_ms, 0, 0).strip()} ms; approval -> stored at all p99 "
                    f"{_f(b.approval_p99_ms, 0, 0).strip()} ms"
                )
        if self.ops:
            width = max(44, *(len(o.op) for o in self.ops))
            lines.append(f"{'operation':{width}} {'us':>10}  note")
            lines += [f"{o.op:{width}} {o.us:>10.1f}  {o.note}" for o in self.ops]
        return "\n".join(lines)


def _f(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"
