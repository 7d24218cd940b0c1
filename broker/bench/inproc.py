"""The secure path's own cost, in one process and without a broker (``nbx bench ops`` rows).

Two harnesses measure what the publisher and the daemon spend per message themselves, so that a
change of a few per cent can be seen on a noisy machine (the end-to-end modes move by 25 % from run
to run):

* :func:`publish_cost`: ``Publisher.publish`` of the red notice to one recipient, ``concurrency``
  calls in flight, with an in-memory producer that acknowledges at once (no Kafka,
  :mod:`broker.testing`) and the publisher's own
  SQLite bookkeeping;
* :func:`store_cost`: ``ConsumerDaemon`` verifying and storing frames sealed beforehand, in
  batches as it stores a poll (open, policy, view, validation, SQLite with fsync, log line);
  receipts and Kafka are left out.

Both report CPU microseconds per message (the store: the median of its batches). For instruction
counts run the module under valgrind twice with different counts and subtract (start-up cancels
out)::

    python -m broker.bench.inproc frames 400 F     # sealed once, outside the counted runs
    valgrind --tool=cachegrind --cache-sim=no python -m broker.bench.inproc store F 100
    valgrind --tool=cachegrind --cache-sim=no python -m broker.bench.inproc store F 400
    valgrind --tool=cachegrind --cache-sim=no python -m broker.bench.inproc publish 100
    valgrind --tool=cachegrind --cache-sim=no python -m broker.bench.inproc publish 300

(``I refs`` of the second minus the first, divided by 300 or 200.)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import ConsumerRecord, TopicPartition
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from broker.bench.common import RECIPIENT, SENDER
from broker.bench.secure import notices
from broker.examples import policies_dir
from broker.keys import BureauKeys
from broker.keys.bureau import StaticDirectory
from broker.logging import Discard, configure
from broker.node import ConsumerDaemon, Publisher
from broker.policy import load_policies
from broker.schemas import NoticeBase
from broker.sinks.sqlite import SqliteSink
from broker.testing import MemoryBroker
from broker.transport import LOG_APPEND_TIME, KafkaSettings, inbox

_NO_BROKER = KafkaSettings(bootstrap="127.0.0.1:1")  # never contacted


async def _publish(
    sender: BureauKeys, recipient: BureauKeys, batch: list[NoticeBase], concurrency: int
) -> tuple[float, list[bytes]]:
    """Publish ``batch`` to ``recipient`` through a real :class:`Publisher` (no broker),
    ``concurrency`` calls in flight; return the CPU microseconds per publish and the frames."""
    directory = StaticDirectory([sender.public(), recipient.public()])
    policies = load_policies(policies_dir())
    kafka = MemoryBroker()
    with tempfile.TemporaryDirectory(prefix="nbx-bench-inproc-") as tmp:
        store = SqliteSink(Path(tmp) / "publisher.sqlite", durable=False)
        pub = Publisher(
            sender,
            directory,
            _NO_BROKER,
            policies=policies,
            store=store,
            transport=kafka.transport(),
        )
        todo = iter(batch)

        async def worker() -> None:
            for notice in todo:
                await pub.publish(notice, [recipient.bureau])

        try:
            async with pub:
                started = time.process_time()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                cost = (time.process_time() - started) / len(batch) * 1e6
        finally:
            store.close()
    return cost, kafka.values(inbox(recipient.bureau))


def publish_cost(count: int, *, concurrency: int = 32) -> float:
    """CPU microseconds per ``publish`` of the red notice to one recipient."""
    configure(stream=Discard())
    keys = BureauKeys.generate(SENDER), BureauKeys.generate(RECIPIENT)
    batch = notices(uuid.uuid4().hex[:8], count)
    cost, _ = asyncio.run(_publish(*keys, batch, concurrency))
    return cost


@dataclass
class Frames:
    """Frames sealed by :data:`SENDER` for :data:`RECIPIENT`, with both bureaus' keys."""

    sender: BureauKeys
    recipient: BureauKeys
    frames: list[bytes]

    def dump(self, path: Path) -> None:
        """Write keys and frames to ``path`` (raw private keys: a benchmark file, not a secret)."""
        parts = [_raw(k) for k in (self.sender, self.recipient)] + self.frames
        path.write_bytes(b"".join(len(p).to_bytes(4, "big") + p for p in parts))

    @classmethod
    def load(cls, path: Path) -> Frames:
        """Read what :meth:`dump` wrote."""
        data, parts, at = path.read_bytes(), [], 0
        while at < len(data):
            size = int.from_bytes(data[at : at + 4], "big")
            parts.append(data[at + 4 : at + 4 + size])
            at += 4 + size
        keys = [_keys(bureau, raw) for bureau, raw in zip((SENDER, RECIPIENT), parts, strict=False)]
        return cls(keys[0], keys[1], parts[2:])


def _raw(keys: BureauKeys) -> bytes:
    raw = serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    return keys.signing_key.private_bytes(*raw) + keys.encryption_key.private_bytes(*raw)


def _keys(bureau: str, raw: bytes) -> BureauKeys:
    return BureauKeys(
        bureau,
        ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32]),
        x25519.X25519PrivateKey.from_private_bytes(raw[32:]),
    )


def seal_frames(count: int) -> Frames:
    """``count`` red notices (distinct ids) as the publisher sends them to :data:`RECIPIENT`."""
    configure(stream=Discard())
    sender, recipient = BureauKeys.generate(SENDER), BureauKeys.generate(RECIPIENT)
    batch = notices(uuid.uuid4().hex[:8], count)
    _, frames = asyncio.run(_publish(sender, recipient, batch, 32))
    return Frames(sender, recipient, frames)


def store_cost(frames: Frames, *, batch: int = 100) -> float:
    """CPU microseconds per record for the daemon to verify and store ``frames`` (median of the
    batches); every frame must be delivered."""
    configure(stream=Discard())
    directory = StaticDirectory([frames.sender.public(), frames.recipient.public()])
    topic = f"nbx.inbox.{frames.recipient.bureau}"
    now_ms = int(time.time() * 1000)
    costs = []
    with tempfile.TemporaryDirectory(prefix="nbx-bench-inproc-") as tmp:
        sink = SqliteSink(Path(tmp) / "daemon.sqlite")
        daemon = ConsumerDaemon(
            frames.recipient,
            directory,
            _NO_BROKER,
            sink,
            policies=load_policies(policies_dir()),
        )
        try:
            for first in range(0, len(frames.frames), batch):
                chunk = frames.frames[first : first + batch]
                records = [
                    ConsumerRecord(
                        topic, 0, first + i, now_ms, LOG_APPEND_TIME, None, f, None, 0, len(f), []
                    )
                    for i, f in enumerate(chunk)
                ]
                started = time.process_time()
                stored = daemon.store_poll({TopicPartition(topic, 0): records})
                sink.end(commit=True)
                costs.append((time.process_time() - started) / len(chunk) * 1e6)
                if len(stored.delivered) != len(chunk):
                    msg = f"{len(chunk) - len(stored.delivered)} frames were not delivered"
                    raise RuntimeError(msg)
        finally:
            sink.close()
    return statistics.median(costs)


def main(argv: list[str]) -> None:
    """``publish N`` | ``frames N FILE`` | ``store FILE [COUNT]``: print the cost (see above)."""
    if argv[:1] == ["publish"] and len(argv) == 2:
        print(f"publish: {publish_cost(int(argv[1])):.1f} us CPU per call")
    elif argv[:1] == ["frames"] and len(argv) == 3:
        seal_frames(int(argv[1])).dump(Path(argv[2]))
    elif argv[:1] == ["store"] and len(argv) in (2, 3):
        frames = Frames.load(Path(argv[1]))
        if len(argv) == 3:
            frames.frames = frames.frames[: int(argv[2])]
        print(f"store: {store_cost(frames):.1f} us CPU per record")
    else:
        sys.exit("usage: python -m broker.bench.inproc publish N | frames N FILE | store FILE [N]")


if __name__ == "__main__":  # pragma: no cover - a measuring tool
    main(sys.argv[1:])
