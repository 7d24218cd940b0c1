"""Prometheus metrics, health and readiness of a node process (``[metrics] port``).

One :class:`NodeMetrics` per process holds its own registry (never the library's global one):
the hot-path instruments (records consumed, the processing and store-commit histograms, the
consumer lag) are updated where the work happens; everything the daemon already counts
(:class:`~broker.node.stats.DaemonStats`: delivered, quarantined by reason, receipts) and
everything that is a state (directory serial, own keys' expiry, readiness, build info) is read
at scrape time by a collector, so a scrape shows exactly the daemon's own counts and the receive
path pays nothing for them.

:class:`MetricsServer` serves ``/metrics`` (Prometheus text format), ``/healthz`` (200 while the
process runs) and ``/readyz`` (200 once the consumer joined its group, the directory is verified
and not refused, and the store has not failed; else 503 with one line per unmet condition) on
``[metrics] host:port`` from a daemon thread. Labels carry only codes (topic, partition, reason,
status, use, key id, version), never personal data or a notice id. The names are
:class:`broker.vocab.Metric` (docs/operations.md lists them).
"""

from __future__ import annotations

import math
import platform
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer

from broker.errors import ConfigError
from broker.logging import get_logger
from broker.vocab import Metric as Name

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from broker.node.stats import DaemonStats

# no ``*_created`` series beside every counter and histogram: NBX's exports are exactly the
# broker.vocab.Metric names (docs/operations.md)
disable_created_metrics()  # type: ignore[no-untyped-call]

#: seconds to verify, open and store one record (a few milliseconds; a busy machine, a slow
#: screening list or a large frame take longer)
PROCESSING_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
#: seconds of one store commit and its fsync (a local disk: milliseconds; a slow one: seconds)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

#: readiness conditions, as ``/readyz`` names the unmet ones
NOT_STARTED = "consumer not started"
NOT_JOINED = "consumer group not joined"
NO_DIRECTORY = "directory not verified"
STORE_FAILED = "store failed"


def _version() -> str:
    """The installed ``nbx`` version (as ``broker.__version__``, without importing the top)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nbx")
    except PackageNotFoundError:  # pragma: no cover - a source tree without the package installed
        return "0+unknown"


class Readiness(Protocol):
    """What ``/readyz`` asks: the unmet conditions (empty: ready)."""

    def __call__(self) -> list[str]:
        """The unmet readiness conditions, one short line each."""
        ...


class NodeMetrics:
    """The metrics of one node process (a daemon, a long-running publisher) in its own registry.

    The owner attaches what the collector reads at scrape time: :attr:`stats` (the daemon's
    counters), :attr:`directory` (serial, own keys' expiry) and :attr:`readiness`.
    """

    def __init__(self, bureau: str, *, clock: Callable[[], datetime] | None = None) -> None:
        """Create the registry and the instruments for bureau ``bureau`` (its own keys' expiry
        is reported; the bureau itself is not a label: one process serves one bureau)."""
        self.bureau = bureau
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.registry = CollectorRegistry(auto_describe=True)
        self.stats: DaemonStats | None = None
        self.directory: object | None = None
        self.readiness: Readiness | None = None
        self.records_consumed = Counter(
            Name.RECORDS_CONSUMED,
            "Records read from the consumed topics (inbox, receipts, holding).",
            ["topic"],
            registry=self.registry,
        )
        self.published = Counter(
            Name.PUBLISHED,
            "Messages the publisher sent, per recipient, by outcome status.",
            ["status"],
            registry=self.registry,
        )
        self.processing_seconds = Histogram(
            Name.PROCESSING_SECONDS,
            "Time to verify, open, check and store one consumed record.",
            buckets=PROCESSING_BUCKETS,
            registry=self.registry,
        )
        self.store_commit_seconds = Histogram(
            Name.STORE_COMMIT_SECONDS,
            "Time of one store commit (one poll's transaction and its fsync).",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            Name.CONSUMER_LAG,
            "Records on a consumed partition not yet read (high watermark minus position).",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(self))

    # --- the hot path -----------------------------------------------------------------------

    def consumed(self, topic: str, seconds: float) -> None:
        """One record of ``topic`` was handled in ``seconds``."""
        self.records_consumed.labels(topic).inc()
        self.processing_seconds.observe(seconds)

    def committed(self, seconds: float) -> None:
        """One store commit took ``seconds``."""
        self.store_commit_seconds.observe(seconds)

    def lag(self, topic: str, partition: int, records: int) -> None:
        """``records`` are waiting on ``topic``/``partition``."""
        self.consumer_lag.labels(topic, str(partition)).set(max(0, records))

    def sent(self, status: str) -> None:
        """The publisher's message to one recipient ended with ``status``."""
        self.published.labels(status).inc()

    # --- state -------------------------------------------------------------------------------

    def unmet(self) -> list[str]:
        """The unmet readiness conditions (none attached: ready)."""
        return [] if self.readiness is None else self.readiness()

    def key_expiry(self) -> list[tuple[str, str, float]]:
        """``(use, key id, days left)`` of each of this bureau's keys valid now in the current
        directory (not revoked, inside its window): days until its ``not_after``, infinite for a
        key without one; none when the directory is not loaded or does not list the bureau.

        A key without an end is reported too, so that ``max by (use)`` stays high while the
        previous key runs out its overlap after a rotation (only the old key has a
        ``not_after`` then)."""
        record = _own_record(self.directory, self.bureau)
        if record is None:
            return []
        now = self.clock()
        left = []
        for key in getattr(record, "keys", ()):
            if not key.valid_at(now) or key.revoked_at(now):
                continue
            days = math.inf if key.not_after is None else (key.not_after - now) / timedelta(days=1)
            left.append((key.use, key.kid, days))
        return left

    def serve(self, host: str, port: int) -> MetricsServer:
        """Start the HTTP endpoint on ``host:port`` (0: a free port) and return it."""
        return MetricsServer(self, host, port)


def _own_record(directory: object | None, bureau: str) -> Any:
    """The directory record of ``bureau`` (a followed directory's current one), or None."""
    current = getattr(directory, "current", directory)
    lookup = getattr(current, "bureau", None)
    if not callable(lookup):
        return None
    try:
        return lookup(bureau)
    except Exception:  # not listed (or not loaded yet): nothing to report
        return None


class _StateCollector:
    """Reads, at scrape time, what the daemon counts and what the node's state is."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        """Nothing to describe ahead: the families depend on what is attached."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The build info, the daemon's counts, the directory serial, key expiry, readiness."""
        m = self.metrics
        build = GaugeMetricFamily(
            Name.BUILD_INFO, "NBX build: version and Python version.", labels=["version", "python"]
        )
        build.add_metric([_version(), platform.python_version()], 1)
        yield build
        ready = GaugeMetricFamily(Name.READY, "1 when /readyz answers ready, else 0.")
        ready.add_metric([], 0 if m.unmet() else 1)
        yield ready
        stats = m.stats
        if stats is not None:
            yield _counter(
                Name.DELIVERED, "Notices and messages delivered to the store.", stats.delivered
            )
            quarantined = CounterMetricFamily(
                Name.QUARANTINED, "Records sent to quarantine, by reason code.", labels=["reason"]
            )
            for reason, count in sorted(dict(stats.reasons).items()):
                quarantined.add_metric([reason], count)
            yield quarantined
            yield _counter(
                Name.RECEIPTS_SENT, "Signed receipts sent to senders.", stats.receipts_sent
            )
            yield _counter(
                Name.RECEIPTS_RECEIVED,
                "Receipts received for messages sent.",
                stats.receipts_received,
            )
        serial = getattr(m.directory, "serial", None)
        if isinstance(serial, int):
            family = GaugeMetricFamily(Name.DIRECTORY_SERIAL, "Serial of the verified directory.")
            family.add_metric([], serial)
            yield family
        expiry = GaugeMetricFamily(
            Name.KEY_EXPIRY_DAYS,
            "Days until each of this bureau's valid keys expires (the directory's not_after; "
            "+Inf: no end).",
            labels=["use", "key_id"],
        )
        for use, kid, days in m.key_expiry():
            expiry.add_metric([use, kid], round(days, 3))
        yield expiry


def _counter(name: str, text: str, value: int) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text)
    family.add_metric([], value)
    return family


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the node's log is structured JSON only."""

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the line."""


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` of one :class:`NodeMetrics` on a thread."""

    def __init__(self, metrics: NodeMetrics, host: str, port: int) -> None:
        """Bind ``host:port`` (0: a free port; :attr:`port` says which) and start serving;
        :class:`~broker.errors.ConfigError` (one line) when it cannot be bound."""
        self.metrics = metrics
        exposition = make_wsgi_app(metrics.registry)

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "/")
            if path == "/metrics":
                body: Iterable[bytes] = exposition(environ, start_response)
                return body
            if path == "/healthz":
                return _text(start_response, "200 OK", "ok\n")
            if path == "/readyz":
                unmet = metrics.unmet()
                if unmet:
                    lines = "".join(f"not ready: {u}\n" for u in unmet)
                    return _text(start_response, "503 Service Unavailable", lines)
                return _text(start_response, "200 OK", "ready\n")
            return _text(start_response, "404 Not Found", "not found\n")

        try:
            self._server = make_server(
                host, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler
            )
        except OSError as exc:  # in use, not an address of this host, not allowed
            msg = f"[metrics] {host}:{port}: cannot listen: {exc.strerror or exc}"
            raise ConfigError(msg) from None
        self.host = host
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="nbx-metrics", daemon=True
        )
        self._thread.start()
        get_logger().info("metrics.listening", bureau=metrics.bureau, port=self.port)

    @property
    def url(self) -> str:
        """The endpoint's base URL."""
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _text(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))],
    )
    return [data]
