"""The publisher's batch signer: concurrent publishes share one signature, lone ones do not."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from broker.bench.common import RECIPIENT, red_notice_data
from broker.envelope import open_package
from broker.envelope.seal import SIGNATURE_DOMAIN, hpke_info, tree_head
from broker.errors import ConfigError
from broker.examples import policies_dir
from broker.keys import BureauKeys
from broker.keys.bureau import StaticDirectory
from broker.node import Publisher
from broker.node.config import NodeConfig
from broker.node.provision import provision
from broker.node.signer import BatchSigner
from broker.policy import load_policies
from broker.schemas import parse_notice
from broker.sinks.sqlite import SqliteSink
from broker.testing import MemoryBroker
from broker.transport import KafkaSettings
from broker.wire import frame, merkle
from broker.wire.canonical import b64u_decode
from broker.wire.suites import HPKE_SUITES

KEYS = BureauKeys.generate("IT")


def _verify_all(statements: list[bytes], results: list[tuple[bytes, Any]]) -> None:
    """Each (signature, proof) verifies its statement with IT's public key."""
    public = KEYS.signing_key.public_key()
    for statement, (signature, proof) in zip(statements, results, strict=True):
        if proof is None:
            public.verify(signature, SIGNATURE_DOMAIN + statement)
        else:
            root = merkle.root_from_proof(
                merkle.leaf_hash(statement), proof.index, proof.size, proof.path
            )
            public.verify(signature, tree_head(proof.size, root))


async def test_calls_of_one_loop_turn_share_one_signature() -> None:
    """Nine calls started together: one signature, proofs 0..8 of 9, each verifies."""
    signer = BatchSigner(KEYS)
    statements = [f"statement {i}".encode() for i in range(9)]
    results = await asyncio.gather(*(signer.sign(s) for s in statements))
    assert (signer.signatures, signer.statements) == (1, 9)
    assert len({sig for sig, _ in results}) == 1
    assert [(p.index, p.size) if p else None for _, p in results] == [(i, 9) for i in range(9)]
    _verify_all(statements, results)


async def test_calls_one_at_a_time_are_signed_alone() -> None:
    """Each awaited before the next: no batch, no proof, the single-statement signature."""
    signer = BatchSigner(KEYS)
    statements = [f"alone {i}".encode() for i in range(3)]
    results = [await signer.sign(s) for s in statements]
    assert (signer.signatures, signer.statements) == (3, 3)
    assert all(proof is None for _, proof in results)
    _verify_all(statements, results)


async def test_a_full_batch_is_signed_at_once_and_the_rest_follows() -> None:
    """max_batch 4 and ten calls: batches of 4, 4 and 2, all verifying."""
    signer = BatchSigner(KEYS, max_batch=4)
    statements = [f"s{i}".encode() for i in range(10)]
    results = await asyncio.gather(*(signer.sign(s) for s in statements))
    assert [p.size if p else None for _, p in results] == [4, 4, 4, 4, 4, 4, 4, 4, 2, 2]
    assert signer.signatures == 3
    _verify_all(statements, results)


async def test_a_cancelled_call_does_not_hold_up_the_others() -> None:
    """One caller gives up before the turn ends; the others still get their signatures."""
    signer = BatchSigner(KEYS)
    tasks = [asyncio.create_task(signer.sign(f"c{i}".encode())) for i in range(3)]
    await asyncio.sleep(0)  # every task has queued its statement
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    _verify_all([b"c0", b"c2"], [done[0], done[2]])  # type: ignore[list-item]


class _BrokenKey:
    def sign(self, _data: bytes) -> bytes:
        raise RuntimeError("HSM unavailable")


async def test_a_signing_failure_fails_every_call_of_the_batch() -> None:
    """The error reaches every caller of the batch instead of leaving them waiting."""
    broken = BureauKeys("IT", _BrokenKey(), KEYS.encryption_key)  # type: ignore[arg-type]
    signer = BatchSigner(broken)
    results = await asyncio.gather(*(signer.sign(b"x"), signer.sign(b"y")), return_exceptions=True)
    assert [str(r) for r in results] == ["HSM unavailable", "HSM unavailable"]


@pytest.mark.parametrize("size", [0, 257])
def test_max_batch_limits(size: int) -> None:
    """A batch size outside 1..MAX_BATCH is refused when the signer is built."""
    with pytest.raises(ValueError, match="max_batch must be 1 to 256"):
        BatchSigner(KEYS, max_batch=size)


# --- through the publisher ----------------------------------------------------------------------


async def _published(concurrent: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """Six red notices from IT to DE, all at once or one after the other; DE's decrypted
    packages and the notice ids DE opened."""
    sender, recipient = KEYS, BureauKeys.generate(RECIPIENT)
    directory = StaticDirectory([sender.public(), recipient.public()])
    base = parse_notice(red_notice_data())
    batch = [base.model_copy(update={"notice_id": f"2026/{i}"}) for i in range(6)]
    kafka = MemoryBroker()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteSink(Path(tmp) / "p.sqlite", durable=False)
        pub = Publisher(
            sender,
            directory,
            KafkaSettings(bootstrap="127.0.0.1:1"),
            policies=load_policies(policies_dir()),
            store=store,
            transport=kafka.transport(),
        )
        async with pub:
            if concurrent:
                await asyncio.gather(*(pub.publish(n, [RECIPIENT]) for n in batch))
            else:
                for n in batch:
                    await pub.publish(n, [RECIPIENT])
        store.close()
    topic = f"nbx.inbox.{RECIPIENT}"
    keys = {recipient.encryption_key_id: recipient.encryption_key}
    packages, opened = [], []
    for value in kafka.values(f"nbx.inbox.{RECIPIENT}"):
        f = frame.decode(value)
        info = hpke_info(topic, RECIPIENT, f.recipient_kid, f.suite)
        packages.append(
            json.loads(HPKE_SUITES[f.suite].decrypt(f.ciphertext, keys[f.recipient_kid], info=info))
        )
        got = open_package(
            value, topic=topic, recipient=RECIPIENT, decryption_keys=keys, directory=directory
        )
        opened.append(got.notice_id)
    return packages, opened


async def test_concurrent_publishes_share_a_signature_and_each_opens() -> None:
    """Six publishes in flight: one signature for all six packages, each opens for DE."""
    packages, opened = await _published(concurrent=True)
    assert sorted(opened) == [f"2026/{i}" for i in range(6)]
    assert len({p["signature"] for p in packages}) == 1
    assert sorted(p["proof"]["index"] for p in packages) == list(range(6))
    assert {p["proof"]["size"] for p in packages} == {6}
    assert all(len(b64u_decode(h)) == 32 for p in packages for h in p["proof"]["path"])


async def test_sequential_publishes_are_signed_alone() -> None:
    """One publish at a time: six signatures, no proof (the single-statement format)."""
    packages, opened = await _published(concurrent=False)
    assert len(opened) == 6
    assert len({p["signature"] for p in packages}) == 6
    assert all("proof" not in p for p in packages)


# --- the operator's switch (limits.max_sign_batch) -----------------------------------------------


async def test_max_batch_one_signs_every_call_alone_even_when_concurrent() -> None:
    """max_batch 1 (for receivers that predate batch signatures): five calls in one turn, five
    single-statement signatures, no proof."""
    signer = BatchSigner(KEYS, max_batch=1)
    statements = [f"one {i}".encode() for i in range(5)]
    results = await asyncio.gather(*(signer.sign(s) for s in statements))
    assert signer.signatures == 5
    assert all(proof is None for _, proof in results)
    _verify_all(statements, results)


def _node(tmp_path: Path, limits: str = "") -> Path:
    configs = provision(
        tmp_path, ["IT", "DE"], bootstrap="127.0.0.1:1", policies=Path("deploy/policies")
    )
    path = configs["IT"]
    path.write_text(path.read_text() + limits)
    return path


def test_node_config_sets_the_publishers_batch_limit(tmp_path: Path) -> None:
    """`[limits] max_sign_batch` reaches the publisher's signer; the default is 64."""
    assert Publisher.from_config(NodeConfig.load(_node(tmp_path / "a"))).signer.max_batch == 64
    path = _node(tmp_path / "b", "\n[limits]\nmax_sign_batch = 1\n")
    assert Publisher.from_config(NodeConfig.load(path)).signer.max_batch == 1


@pytest.mark.parametrize("value", [0, 257, '"many"'])
def test_node_config_refuses_a_batch_limit_out_of_range(tmp_path: Path, value: int | str) -> None:
    """0, more than 256 or not an integer: a ConfigError naming the setting."""
    path = _node(tmp_path, f"\n[limits]\nmax_sign_batch = {value}\n")
    with pytest.raises(ConfigError, match=r"node\.toml: limits\.max_sign_batch: "):
        NodeConfig.load(path)
