"""``nbx demo``: the walking skeleton on an embedded broker.

Bureau IT seals one notice (signed with Ed25519) and encrypts it with HPKE to bureau FR's
X25519 key, publishes it to ``nbx.inbox.FR`` on a real Kafka-protocol broker; FR's consumer
daemon decrypts, verifies and stores it in a SQLite file, logging ``package.delivered``. Keys are
generated for the run; the broker and every temporary file are removed at the end.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker import devbroker
from broker.envelope import Grant
from broker.keys import BureauKeys, StaticDirectory
from broker.node import ConsumerDaemon, Publisher
from broker.sinks import SqliteSink
from broker.transport import KafkaSettings

SAMPLE_HEADER: dict[str, Any] = {
    "notice_id": "2026/DEMO-0001",
    "notice_type": "red",
    "issuing_bureau": "IT",  # the sample's origin
    "handling": {"code": "H0"},
}
SAMPLE_UNITS: dict[str, Any] = {
    "person.family_name": "ROSSI",
    "person.forenames": ["MARIO"],
    "person.date_of_birth": "1971-03-02",
    "person.biometrics.fingerprints": {"ref": "afis:IT/1234", "sha256": "0" * 64},
}


async def run_skeleton(
    bootstrap: str,
    workdir: Path,
    *,
    enable_idempotence: bool = True,
    echo: Callable[[str], None] = print,
    sender: str = "IT",
    recipient: str = "FR",
) -> dict[str, Any]:
    """Publish one sample notice from ``sender`` to ``recipient``; return what it stored."""
    it, fr = BureauKeys.generate(sender), BureauKeys.generate(recipient)
    directory = StaticDirectory([it.public(), fr.public()])
    settings = KafkaSettings(bootstrap=bootstrap, enable_idempotence=enable_idempotence)
    echo(
        f"keys: {sender} signing {it.signing_key_id}, {recipient} encryption {fr.encryption_key_id}"
    )
    grant = Grant(
        disclosed=frozenset(SAMPLE_UNITS) - {"person.biometrics.fingerprints"},
        withheld=(("person.biometrics.fingerprints", "default-deny-biometric"),),
        policy="demo-skeleton",
    )
    async with Publisher(it, directory, settings) as pub:
        result = await pub.send(
            kind="publish",
            notice_id=SAMPLE_HEADER["notice_id"],
            notice_type="red",
            header=SAMPLE_HEADER,
            units=SAMPLE_UNITS,
            grants={recipient: grant},
            handling="H0",
        )
    for o in result.outcomes:
        echo(
            f"{sender} -> {o.recipient}: {o.status} to {o.topic} "
            f"offset {o.offset} msg {result.msg_id}"
        )
    sink = SqliteSink(workdir / f"{recipient}.sqlite")
    try:
        daemon = ConsumerDaemon(fr, directory, settings, sink)
        stats = await daemon.run(until_idle_s=2.0)
        stored = sink.deliveries()
    finally:
        sink.close()
    echo(f"{recipient} daemon: delivered {stats.delivered}, quarantined {stats.quarantined}")
    for row in stored:
        disclosed = sorted(_paths(row["view"]) - set(SAMPLE_HEADER))
        echo(
            f"{recipient} stored {row['notice_id']} from {row['sender']} (signature verified): "
            f"disclosed {', '.join(disclosed)}; withheld "
            + ", ".join(f"{p} ({rule})" for p, rule in row["withheld"])
        )
    return {"result": result, "stored": stored, "stats": stats}


def _paths(view: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in view.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path.startswith("person"):
            out |= _paths(value, path + ".")
        else:
            out.add(path)
    return out


def main(impl: devbroker.Impl = "noida", echo: Callable[[str], None] = print) -> int:
    """Run the skeleton on a fresh embedded broker; return the exit code."""
    started = time.monotonic()
    broker = devbroker.start(impl)
    echo(f"embedded {impl} broker on {broker.bootstrap} (pid {broker.pid})")
    try:
        with tempfile.TemporaryDirectory(prefix="nbx-demo-") as tmp:
            out = asyncio.run(
                run_skeleton(
                    broker.bootstrap, Path(tmp), enable_idempotence=impl != "tansu", echo=echo
                )
            )
    finally:
        broker.stop()
        echo("broker stopped")
    ok = len(out["stored"]) == 1
    echo(f"demo {'succeeded' if ok else 'FAILED'} in {time.monotonic() - started:.1f} s")
    return 0 if ok else 1
