"""The cost of each operation of the secure path on its own (``nbx bench ops``), no broker needed.

Each operation runs on the red notice with the example policies, ``rounds`` times, and its median
is reported in microseconds. Audience size matters because the signed statement lists every
recipient and its grant hash, and every recipient's package carries the whole statement: the
``open`` and receipt rows are given for an audience of 1 and of 195.

The rows marked ``required`` are the work docs/architecture.md section 3 cannot do without, per
delivery of a single-recipient notice: the Ed25519 signature and its verification, shared by a
batch of :data:`SIGN_BATCH` statements as a busy publisher signs them (:mod:`broker.node.signer`:
the signature, the Merkle proofs, each recipient's proof check and one verification per batch), the
HPKE encryption and decryption of the package, the salted digests of the disclosures (computed
by the sender and again by the recipient), the receipt's share of a batch and one durable store
write in a batch transaction. Their sum, with what the raw baseline spends on Kafka, bounds the
secure throughput (:attr:`broker.bench.report.Report.ratio_bound`).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker.bench import inproc
from broker.bench.broadcast import bureau_ids
from broker.bench.common import RECIPIENT, SENDER, red_notice_data
from broker.bench.report import OpCost
from broker.envelope import Grant, open_package, seal
from broker.envelope.seal import SIGNATURE_DOMAIN, hpke_info, sign_batch, tree_head
from broker.examples import policies_dir
from broker.keys import BureauKeys
from broker.keys.bureau import StaticDirectory
from broker.node.receipts import RECEIPTS_NOTICE_ID
from broker.policy import decide, decide_all, inbound_check, load_policies
from broker.schemas import (
    assemble_view,
    disclosure_units,
    non_redactable,
    parse_notice,
    validate_view,
)
from broker.sinks import Position
from broker.sinks.sqlite import SqliteSink
from broker.vocab import MessageKind, ReceiptStatus
from broker.wire import merkle
from broker.wire.canonical import digests
from broker.wire.suites import HPKE_SUITES, suite_for_public

_BATCH = 100  # messages per store transaction in the batched row (a daemon stores a poll at once)
#: statements per batch signature in the required rows: ``nbx bench secure``'s default
#: concurrency, whose ``messages_per_signature`` shows what a run really got
SIGN_BATCH = 32


def _time(fn: Callable[[], Any], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def run(*, rounds: int = 50, audience: int = 195) -> list[OpCost]:
    """Time every step of publishing to ``audience`` recipients and of receiving one package."""
    notice = parse_notice(red_notice_data())
    policies = load_policies(policies_dir())
    sender = BureauKeys.generate(SENDER)
    ids = bureau_ids(audience) if audience > 1 else [RECIPIENT]
    keys = {cc: BureauKeys.generate(cc) for cc in ids}
    directory = StaticDirectory([k.public() for k in (sender, *keys.values())])
    units = {u.path: u.value for u in disclosure_units(notice)}
    header = non_redactable(notice)
    out: list[OpCost] = []

    def add(op: str, us: float, note: str = "", *, required: bool = False) -> None:
        out.append(OpCost(op, round(us, 1), note, required))

    add("decide (1 recipient)", _time(lambda: decide(notice, ids[0], policies), rounds))
    all_us = _time(lambda: decide_all(notice, ids, policies), max(3, rounds // 10))
    add(f"decide_all ({len(ids)}) per recipient", all_us / len(ids))
    grants = {cc: d.grant() for cc, d in decide_all(notice, ids, policies).items()}
    add("disclosure_units + non_redactable", _time(lambda: (disclosure_units(notice),
        non_redactable(notice)), rounds))  # fmt: skip

    def sealed_for(audience_ids: list[str]) -> Any:
        return seal(
            signer=sender,
            kind=MessageKind.PUBLISH,
            notice_id=notice.notice_id,
            notice_type="red",
            header=header,
            units=units,
            grants={cc: grants[cc] for cc in audience_ids},
            handling="H1",
        )

    one = [ids[0]]
    add("seal (audience 1)", _time(lambda: sealed_for(one), rounds))
    add(f"seal (audience {len(ids)})", _time(lambda: sealed_for(ids), max(3, rounds // 5)))
    add("directory.encryption_key", _time(lambda: directory.encryption_key(ids[0]), rounds))
    results: dict[int, bytes] = {}
    for label, aud in (("1", one), (str(len(ids)), ids)):
        sealed = sealed_for(aud)
        cc = aud[0]
        kid, pub = directory.encryption_key(cc)
        topic = f"nbx.inbox.{cc}"

        def package(
            s: Any = sealed, c: str = cc, k: str = kid, p: Any = pub, t: str = topic
        ) -> bytes:
            frame: bytes = s.package_for(c, topic=t, recipient_kid=k, recipient_key=p)
            return frame

        add(f"package_for per recipient (audience {label})", _time(package, rounds))
        frame = package()
        results[len(aud)] = frame
        add(f"  frame bytes (audience {label})", float(len(frame)), "size, not time")
        rk = keys[cc]
        keys_map = {rk.encryption_key_id: rk.encryption_key}

        def opened(f: bytes = frame, t: str = topic, c: str = cc, km: Any = keys_map) -> Any:
            return open_package(f, topic=t, recipient=c, decryption_keys=km, directory=directory)

        add(f"open_package (audience {label})", _time(opened, rounds))
    # the work no implementation of docs/architecture.md section 3 can skip (audience 1)
    sealed1 = sealed_for(one)
    signed = SIGNATURE_DOMAIN + sealed1.statement
    kid1, pub1 = directory.encryption_key(one[0])
    suite1 = suite_for_public(pub1)
    info1 = hpke_info(f"nbx.inbox.{one[0]}", one[0], kid1, suite1)
    plaintext1 = sealed1.plaintext_for(one[0])
    ciphertext1 = HPKE_SUITES[suite1].encrypt(plaintext1, pub1, info=info1)
    signature1 = sender.signing_key.sign(signed)
    verifier = sender.signing_key.public_key()
    private1 = keys[one[0]].encryption_key
    disclosures1 = [sealed1.disclosures[p] for p in sorted(sealed1.disclosures)]
    add("Ed25519 sign (one statement alone)", _time(lambda: sender.signing_key.sign(signed),
        rounds))  # fmt: skip
    add("Ed25519 verify (one statement alone)", _time(lambda: verifier.verify(signature1,
        signed), rounds))  # fmt: skip
    statements = [sealed_for(one).statement for _ in range(SIGN_BATCH)]
    batch = sign_batch(sender, statements)
    leaves = [merkle.leaf_hash(st) for st in statements]

    def check_batch() -> None:  # what the recipient of every message of the batch does
        head = b""
        for i, (_, proof) in enumerate(batch):
            assert proof is not None
            head = tree_head(SIGN_BATCH, merkle.root_from_proof(leaves[i], i, SIGN_BATCH,
                                                                proof.path))  # fmt: skip
        verifier.verify(batch[0][0], head)

    add(f"required: batch signature, per message ({SIGN_BATCH} per batch)",
        _time(lambda: sign_batch(sender, statements), max(3, rounds // 5)) / SIGN_BATCH,
        "Ed25519 sign + Merkle proofs", required=True)  # fmt: skip
    add(f"required: batch signature check, per message ({SIGN_BATCH} per batch)",
        _time(check_batch, max(3, rounds // 5)) / SIGN_BATCH,
        "proof check + a shared Ed25519 verify", required=True)  # fmt: skip
    add("required: HPKE encrypt (package)", _time(lambda: HPKE_SUITES[suite1].encrypt(
        plaintext1, pub1, info=info1), rounds), f"{len(plaintext1)} B", required=True)  # fmt: skip
    add("required: HPKE decrypt (package)", _time(lambda: HPKE_SUITES[suite1].decrypt(
        ciphertext1, private1, info=info1), rounds), required=True)  # fmt: skip
    add("required: disclosure digests x2 (sender, recipient)",
        2 * _time(lambda: digests(disclosures1), rounds), f"{len(disclosures1)} disclosures",
        required=True)  # fmt: skip
    pkg = open_package(
        results[1], topic=f"nbx.inbox.{ids[0]}", recipient=ids[0],
        decryption_keys={keys[ids[0]].encryption_key_id: keys[ids[0]].encryption_key},
        directory=directory,
    )  # fmt: skip
    view = assemble_view(dict(pkg.header), dict(pkg.disclosed))
    add(
        "assemble_view", _time(lambda: assemble_view(dict(pkg.header), dict(pkg.disclosed)), rounds)
    )
    add("validate_view", _time(lambda: validate_view(view), rounds))
    add("inbound_check", _time(lambda: inbound_check(policies, notice_type="red", sender=SENDER,
        recipient=ids[0]), rounds))  # fmt: skip

    def receipt(count: int) -> Callable[[], bytes]:
        answer = {
            "msg_id": pkg.msg_id,
            "notice_id": pkg.notice_id,
            "recipient": ids[0],
            "status": ReceiptStatus.DELIVERED.value,  # plain str, as the receipt writer's
            "reason": None,
            "at": datetime.now(UTC).isoformat(),
        }

        def run() -> bytes:
            s = seal(
                signer=keys[ids[0]],
                kind=MessageKind.RECEIPT,
                notice_id=RECEIPTS_NOTICE_ID,
                notice_type=MessageKind.RECEIPT.value,
                header={"receipts": [answer] * count},
                units={},
                grants={SENDER: Grant(frozenset(), (), MessageKind.RECEIPT.value)},
                handling="H0",
            )
            kid, key = directory.encryption_key(SENDER)
            frame: bytes = s.package_for(
                SENDER, topic=f"nbx.receipts.{SENDER}", recipient_kid=kid, recipient_key=key
            )
            return frame

        return run  # fmt: skip

    add("receipt seal + package_for, 1 answer", _time(receipt(1), rounds))
    add(
        "  per answer, 200 answers in one receipt",
        _time(receipt(200), max(3, rounds // 10)) / 200,
        "a daemon batch answers each sender once",
        required=True,
    )
    with tempfile.TemporaryDirectory(prefix="nbx-bench-ops-") as tmp:
        sink = SqliteSink(Path(tmp) / "ops.sqlite")
        counter = iter(range(10**9))

        def apply() -> None:
            n = next(counter)
            p = pkg.__class__.__new__(pkg.__class__)
            object.__setattr__(p, "__dict__", {**pkg.__dict__, "msg_id": f"m{n}",
                                               "notice_id": f"n{n}"})  # fmt: skip
            sink.seen(p.sender, p.msg_id)
            sink.apply(p, view, Position("t", 0, n))

        add("sink.seen + sink.apply (1 txn, synchronous=FULL)", _time(apply, rounds))

        def apply_batch() -> None:
            with sink.batch():
                for _ in range(_BATCH):
                    apply()

        add(
            f"  per message, {_BATCH} in one transaction",
            _time(apply_batch, max(3, rounds // 10)) / _BATCH,
            "one fsync per daemon batch",
            required=True,
        )
        sink.close()
    # the two sides' whole per-message cost, in process (broker/bench/inproc.py): against the
    # required rows this is what the Python around the cryptography costs
    add(
        "publish to 1 recipient, whole call (no broker)",
        inproc.publish_cost(max(32, rounds * 4)),
        "publisher CPU per message",
    )
    add(
        "daemon: open, check, store, per record (no broker)",
        inproc.store_cost(inproc.seal_frames(max(20, rounds * 2)), batch=max(10, rounds // 2)),
        "daemon CPU per message",
    )
    add(
        "required per delivery (sum of the required rows)",
        sum(o.us for o in out if o.required),
        "the required work as this code does it",
    )
    return out
