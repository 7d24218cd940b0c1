"""Envelope micro-benchmark behind ``nbx bench envelope``: seal time by audience size, open time.

Sealing is one Ed25519 signature plus one HPKE encryption per recipient; opening is one HPKE
decryption, one signature verification and one digest per disclosure. Keys are generated for the
run and the key lookup is in memory, so the numbers are the cryptography and encoding cost only.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import product

from broker.envelope.open import open_package
from broker.envelope.seal import Grant, seal
from broker.keys.bureau import BureauKeys, StaticDirectory

_UNITS = {
    "person.family_name": "DOE",
    "person.forename": "JANE",
    "person.date_of_birth": "1980-01-01",
    "person.nationalities": ["FR", "IT"],
    "offence.charges": ["fraud"],
    "offence.summary": "x" * 400,
}


@dataclass(frozen=True)
class BenchRow:
    """Timings for one audience size (milliseconds, best of the rounds)."""

    recipients: int
    seal_ms: float
    open_ms: float


def _bureau_ids(n: int) -> list[str]:
    ids = ("".join(p) for p in product(string.ascii_uppercase, repeat=2))
    return [b for b in ids if b != "XI"][:n]


def run(counts: Iterable[int], *, rounds: int = 5, clock: Callable[[], float]) -> list[BenchRow]:
    """Seal to each audience size in ``counts`` and open one package, ``rounds`` times each."""
    sender = BureauKeys.generate("XI")
    rows = []
    for n in counts:
        recipients = {cc: BureauKeys.generate(cc) for cc in _bureau_ids(n)}
        lookup = StaticDirectory([k.public() for k in (sender, *recipients.values())])
        grants = {
            cc: Grant(frozenset(list(_UNITS)[:4]), (("offence.summary", "bench"),))
            for cc in recipients
        }
        seal_best = open_best = float("inf")
        for _ in range(rounds):
            now = datetime.now(UTC)
            start = clock()
            sealed = seal(
                signer=sender,
                kind="notice",
                notice_id="bench",
                notice_type="red",
                header={},
                units=_UNITS,
                grants=grants,
                handling="restricted",
                now=now,
            )
            frames = {
                cc: sealed.package_for(
                    cc,
                    topic=f"nbx.inbox.{cc}",
                    recipient_kid=k.encryption_key_id,
                    recipient_key=k.encryption_key.public_key(),
                )
                for cc, k in recipients.items()
            }
            seal_best = min(seal_best, clock() - start)
            cc, first = next(iter(recipients.items()))
            start = clock()
            open_package(
                frames[cc],
                topic=f"nbx.inbox.{cc}",
                recipient=cc,
                decryption_keys={first.encryption_key_id: first.encryption_key},
                directory=lookup,
                now=now + timedelta(seconds=1),
            )
            open_best = min(open_best, clock() - start)
        rows.append(BenchRow(n, seal_best * 1000, open_best * 1000))
    return rows
