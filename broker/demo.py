"""``nbx demo``: six bureaus exchange notices over a real embedded Kafka-protocol broker.

1. start the embedded broker; create a trust anchor, six bureaus with keys, a signed directory and
   the example per-country policies;
2. run every bureau's consumer daemon (in this process, one asyncio task each);
3. IT publishes a red notice to all; ES publishes a yellow notice (a missing child) to some;
4. print, per recipient, what it stored: the verified origin, disclosed and withheld fields;
5. IT cancels the red notice; every recipient purges it and the ``purged`` receipts come back.

Everything runs in a temporary folder that is removed at the end, and the broker is stopped by pid.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker import devbroker
from broker.examples import notices_dir
from broker.examples import policies_dir as example_policies_dir
from broker.node import ConsumerDaemon, Publisher
from broker.node.config import NodeConfig
from broker.node.provision import provision
from broker.schemas import NoticeBase, header_fields, parse_notice
from broker.sinks import Sink
from broker.vocab import ALL, MessageKind, ReceiptStatus

BUREAUS = ("IT", "ES", "FR", "DE", "NL", "US")
YELLOW_TO = ("FR", "IT", "DE", "NL")
WAIT_S = 30.0


def example_notice(name: str) -> NoticeBase:
    """A bundled example notice (``red``, ``yellow``, ...)."""
    path = notices_dir() / f"{name}.json"
    return parse_notice(path.read_bytes())


def _leaves(view: Any, prefix: str = "") -> list[str]:
    if isinstance(view, dict):
        out: list[str] = []
        for key, value in view.items():
            out += _leaves(value, f"{prefix}{key}.")
        return out
    return [prefix.rstrip(".")]


class Network:
    """Six bureaus' daemons and publishers on one broker."""

    def __init__(
        self,
        folder: Path,
        bootstrap: str,
        *,
        enable_idempotence: bool,
        require_log_append_time: bool = True,
        pace_empty_fetches: bool = False,
    ) -> None:
        """Provision the bureaus in ``folder``."""
        self.configs = {
            cc: NodeConfig.load(path)
            for cc, path in provision(
                folder,
                BUREAUS,
                bootstrap=bootstrap,
                policies=example_policies_dir(),
                enable_idempotence=enable_idempotence,
                session_timeout_ms=6_000,
                require_log_append_time=require_log_append_time,
                pace_empty_fetches=pace_empty_fetches,
            ).items()
        }
        self.daemons = {cc: ConsumerDaemon.from_config(cfg) for cc, cfg in self.configs.items()}
        self.tasks: list[asyncio.Task[Any]] = []

    def store(self, cc: str) -> Sink:
        """The store of bureau ``cc`` (shared with its daemon)."""
        return self.daemons[cc].sink

    async def start(self) -> None:
        """Start every daemon."""
        self.tasks = [asyncio.create_task(d.run()) for d in self.daemons.values()]

    async def stop(self) -> None:
        """Stop every daemon and close the stores."""
        for d in self.daemons.values():
            d.stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for d in self.daemons.values():
            d.sink.close()

    async def publish(self, cc: str, notice: NoticeBase, to: Any) -> Any:
        """Publish from bureau ``cc`` (its publisher records into the daemon's store)."""
        daemon = self.daemons[cc]
        async with Publisher(
            daemon.keys,
            daemon.directory,
            self.configs[cc].kafka_settings(),
            policies=daemon.policies,
            store=daemon.sink,
        ) as pub:
            return await pub.publish(notice, to)

    async def cancel(self, cc: str, notice_id: str, notice_type: str, reason: str) -> Any:
        """Cancel ``notice_id`` at every bureau it was sent to."""
        daemon = self.daemons[cc]
        async with Publisher(
            daemon.keys, daemon.directory, self.configs[cc].kafka_settings(), store=daemon.sink
        ) as pub:
            return await pub.lifecycle(
                MessageKind.CANCEL.value,
                notice_id,
                notice_type,
                pub.recipients_of(notice_id),
                details={"notice_id": notice_id, "reason": reason, "withdraw": False},
            )

    async def wait_receipts(
        self, cc: str, notice_id: str, status: ReceiptStatus, count: int
    ) -> bool:
        """Wait until ``count`` receipts with ``status`` for ``notice_id`` reached ``cc``."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            got = sum(
                1
                for r in self.store(cc).status(notice_id)
                for m in r["messages"]
                for x in m["receipts"]
                if x["status"] == status
            )
            if got >= count:
                return True
            await asyncio.sleep(0.1)
        return False


def _received(net: Network, notice_id: str) -> list[dict[str, Any]]:
    rows = []
    for cc in BUREAUS:
        stored = net.store(cc).notice(notice_id)
        if stored is None:
            continue
        view = stored["view"] or {}
        header = set(header_fields(stored["notice_type"]))
        rows.append(
            {
                "recipient": cc,
                "origin": stored["sender"],
                "origin_verified": True,
                "status": stored["status"],
                "policy": stored["policy"],
                "disclosed": sorted(p for p in _leaves(view) if p.split(".")[0] not in header),
                "withheld": [{"path": p, "rule": r} for p, r in stored["withheld"] or []],
            }
        )
    return rows


def _print_table(echo: Callable[[str], None], title: str, rows: list[dict[str, Any]]) -> None:
    echo(f"\n== {title}")
    for row in rows:
        echo(
            f"-- {row['recipient']}: from {row['origin']} (signature verified), "
            f"policy {row['policy']}, status {row['status']}"
        )
        fields = sorted({p.split(".")[0] + "." + p.split(".")[1] if "." in p else p
                         for p in row["disclosed"]})  # fmt: skip
        echo(f"   disclosed: {', '.join(fields) or '-'}")
        for w in row["withheld"]:
            echo(f"   withheld:  {w['path']}  <- {w['rule']}")


async def run_demo(
    bootstrap: str,
    folder: Path,
    *,
    enable_idempotence: bool,
    echo: Callable[[str], None],
    require_log_append_time: bool = True,
    pace_empty_fetches: bool = False,
) -> dict[str, Any]:
    """The demo on a running broker; returns the JSON report."""
    net = Network(
        folder,
        bootstrap,
        enable_idempotence=enable_idempotence,
        require_log_append_time=require_log_append_time,
        pace_empty_fetches=pace_empty_fetches,
    )
    echo(f"provisioned bureaus {', '.join(BUREAUS)}: anchor, keys, signed directory, policies")
    await net.start()
    report: dict[str, Any] = {"bureaus": list(BUREAUS)}
    try:
        red = example_notice("red")
        yellow = example_notice("yellow")
        red_result = await net.publish("IT", red, ALL)
        echo(
            f"IT published red notice {red.notice_id} to all: sent to {', '.join(red_result.sent)}"
        )
        yellow_result = await net.publish("ES", yellow, list(YELLOW_TO))
        echo(
            f"ES published yellow notice {yellow.notice_id} to {', '.join(YELLOW_TO)}: "
            f"sent to {', '.join(yellow_result.sent)}"
        )
        ok_red = await net.wait_receipts(
            "IT", red.notice_id, ReceiptStatus.DELIVERED, len(red_result.sent)
        )
        ok_yellow = await net.wait_receipts(
            "ES", yellow.notice_id, ReceiptStatus.DELIVERED, len(yellow_result.sent)
        )
        report["red"] = {"publish": red_result.to_json(), "received": _received(net, red.notice_id)}
        report["yellow"] = {
            "publish": yellow_result.to_json(),
            "received": _received(net, yellow.notice_id),
        }
        _print_table(echo, f"red notice {red.notice_id} from IT", report["red"]["received"])
        _print_table(
            echo, f"yellow notice {yellow.notice_id} from ES", report["yellow"]["received"]
        )
        cancel = await net.cancel("IT", red.notice_id, "red", "subject arrested")
        echo(f"\nIT cancelled {red.notice_id}: sent to {', '.join(cancel.sent)}")
        ok_purge = await net.wait_receipts(
            "IT", red.notice_id, ReceiptStatus.PURGED, len(cancel.sent)
        )
        purged = [
            {"recipient": r["recipient"], "receipts": [x["status"] for m in r["messages"]
                                                      for x in m["receipts"]]}
            for r in net.store("IT").status(red.notice_id)
        ]  # fmt: skip
        for p in purged:
            echo(f"   receipt from {p['recipient']}: {', '.join(p['receipts'])}")
        report["cancel"] = {"publish": cancel.to_json(), "receipts": purged}
        report["ok"] = ok_red and ok_yellow and ok_purge
    finally:
        await net.stop()
    return report


def main(
    impl: devbroker.Impl = "noida", *, as_json: bool = False, echo: Callable[[str], None] = print
) -> int:
    """Run the demo on a fresh embedded broker; return the exit code."""
    started = time.monotonic()
    say = (lambda _line: None) if as_json else echo
    broker = devbroker.start(impl)
    say(f"embedded {impl} broker on {broker.bootstrap} (pid {broker.pid})")
    try:
        with tempfile.TemporaryDirectory(prefix="nbx-demo-") as tmp:
            report = asyncio.run(
                run_demo(
                    broker.bootstrap,
                    Path(tmp),
                    enable_idempotence=devbroker.IDEMPOTENT_PRODUCER[impl],
                    require_log_append_time=devbroker.STAMPS_LOG_APPEND_TIME[impl],
                    pace_empty_fetches=devbroker.NEEDS_FETCH_PACING[impl],
                    echo=say,
                )
            )
    finally:
        broker.stop()
        say("broker stopped")
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    if as_json:
        echo(json.dumps(report, indent=2))
    else:
        say(f"demo {'succeeded' if report['ok'] else 'FAILED'} in {report['elapsed_s']} s")
    return 0 if report["ok"] else 1
