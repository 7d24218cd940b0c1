"""Sign the statements of concurrent publishes together: one Ed25519 signature per batch.

Every ``publish`` call that reaches its signature while others are being prepared in the same
turn of the event loop joins one batch (:func:`broker.envelope.seal.sign_batch`): no timer, no
added wait beyond the turn itself. A publisher with one call at a time signs each statement alone,
exactly as before batching; a busy one (many calls in flight) signs once per turn, and every
recipient verifies that signature once for all the batch's messages it gets.

A batch is signed with one key: a statement prepared with another signing key (the node switched
keys during a rotation, :mod:`broker.keys.signing`) first closes the batch in hand.
"""

from __future__ import annotations

import asyncio

from broker.envelope.seal import MAX_BATCH, Proof, sign_batch
from broker.keys import BureauKeys

_Signed = tuple[bytes, Proof | None]


class BatchSigner:
    """Collects statements during one event-loop turn and signs them with one signature."""

    def __init__(self, keys: BureauKeys, *, max_batch: int = 64) -> None:
        """Sign with ``keys``; at most ``max_batch`` statements (2..MAX_BATCH) per signature."""
        if not 1 <= max_batch <= MAX_BATCH:
            msg = f"max_batch must be 1 to {MAX_BATCH}, not {max_batch}"
            raise ValueError(msg)
        self.keys = keys
        self.max_batch = max_batch
        self._pending: list[tuple[bytes, asyncio.Future[_Signed]]] = []
        self._pending_keys: BureauKeys = keys
        #: signatures made and statements signed (for the bench and the tests)
        self.signatures = 0
        self.statements = 0

    async def sign(self, statement: bytes, keys: BureauKeys | None = None) -> _Signed:
        """The signature (and the batch proof, if it was shared) of ``statement``, made with
        ``keys`` (default: the signer's own; the statement must name their signing key id)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Signed] = loop.create_future()
        signer = keys if keys is not None else self.keys
        if self._pending and not _same_key(signer, self._pending_keys):
            self._flush()  # one batch, one key
        if not self._pending:
            self._pending_keys = signer
        self._pending.append((statement, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:  # flushed already when it filled up
            return
        try:
            signed = sign_batch(self._pending_keys, [statement for statement, _ in batch])
        except Exception as exc:  # a signing failure fails every call of the batch
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.signatures += 1
        self.statements += len(batch)
        for (_, future), result in zip(batch, signed, strict=True):
            if not future.done():  # a cancelled publish: its statement was signed, never sent
                future.set_result(result)


def _same_key(a: BureauKeys, b: BureauKeys) -> bool:
    """Whether ``a`` and ``b`` sign with the same key (the same object, or the same key id)."""
    return a.signing_key is b.signing_key or a.signing_key_id == b.signing_key_id
