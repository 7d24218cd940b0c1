"""The receipt writer: what a daemon owes the senders of a stored batch, sealed and produced.

Every record the pipeline (:mod:`broker.node.pipeline`) handles to the end is answered with an
:class:`Answer` (delivered / rejected + reason / purged). Once the batch is stored, the answers are
grouped per sender and each sender gets one signed, encrypted receipt message (split past
:data:`~broker.schemas.MAX_RECEIPTS_PER_MESSAGE`) on ``nbx.receipts.<sender>``, under a record key
that names no notice it answers (:mod:`broker.transport.record_keys`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.envelope import Grant, VerifiedPackage, seal
from broker.errors import NbxError
from broker.keys import BureauKeys, KeyLookup
from broker.logging import get_logger
from broker.node.stats import DaemonStats
from broker.transport import receipts
from broker.transport.factory import Producer
from broker.transport.record_keys import record_key
from broker.vocab import MessageKind, ReceiptStatus, Unsendable

#: something to produce once the batch is stored; returns the broker's acknowledgement
Action = Callable[[Producer], Awaitable[Awaitable[Any]]]
#: the statement's notice id of a receipt message (it answers several notices)
RECEIPTS_NOTICE_ID = "receipts"


@dataclass(frozen=True)
class Answer:
    """A receipt owed to ``sender``; the batch's answers to one sender are signed together."""

    sender: str
    receipt: dict[str, Any]


def answer(
    package: VerifiedPackage, recipient: str, status: ReceiptStatus, reason: str | None
) -> Answer:
    """The receipt ``recipient`` owes the sender of ``package``; sent after the batch is stored.

    ``reason`` is a :class:`~broker.vocab.Reason` for a rejection, or why a notice was purged
    (a refusal's grounds, ``delete:<case>``).
    """
    return answer_to(package.sender, package.msg_id, package.notice_id, recipient, status, reason)


def answer_to(
    sender: str,
    msg_id: str,
    notice_id: str,
    recipient: str,
    status: ReceiptStatus,
    reason: str | None,
) -> Answer:
    """The receipt ``recipient`` owes ``sender`` for its message ``msg_id`` (also one not in
    hand: a notice purged by a later refusal or delete). The codes go into the receipt as plain
    ``str`` (canonical JSON's fast path takes only those)."""
    return Answer(
        sender,
        {
            "msg_id": msg_id,
            "notice_id": notice_id,
            "recipient": recipient,
            "status": status.value,
            "reason": None if reason is None else str(reason),
            "at": datetime.now(UTC).isoformat(),
        },
    )


class ReceiptWriter:
    """Seals and produces one bureau's receipts (see the module docstring)."""

    def __init__(
        self,
        keys: BureauKeys,
        directory: KeyLookup,
        stats: DaemonStats,
        *,
        max_frame_bytes: int,
    ) -> None:
        """Sign as ``keys``, encrypt to the senders' keys in ``directory``, count in ``stats``."""
        self.keys = keys
        self.directory = directory
        self.stats = stats
        self.max_frame_bytes = max_frame_bytes
        self._log = get_logger()

    def actions(self, answers: list[Answer]) -> list[Action]:
        """One signed, encrypted receipt message per sender (split past
        :data:`~broker.schemas.MAX_RECEIPTS_PER_MESSAGE`) for every answer of the batch."""
        from broker.schemas import MAX_RECEIPTS_PER_MESSAGE

        by_sender: dict[str, list[dict[str, Any]]] = {}
        for a in answers:
            by_sender.setdefault(a.sender, []).append(a.receipt)
        return [
            self._message(sender, bodies[i : i + MAX_RECEIPTS_PER_MESSAGE])
            for sender, bodies in by_sender.items()
            for i in range(0, len(bodies), MAX_RECEIPTS_PER_MESSAGE)
        ]

    def _message(self, sender: str, bodies: list[dict[str, Any]]) -> Action:
        async def send(producer: Producer) -> Awaitable[Any]:
            try:
                kid, public_key = self.directory.recipient_key(sender)
            except NbxError:
                for body in bodies:
                    self._log.warning(
                        "receipt.unsendable",
                        msg_id=body["msg_id"],
                        sender=sender,
                        reason=Unsendable.KEY,
                    )
                return _done()
            sealed = seal(
                signer=self.keys,
                kind=MessageKind.RECEIPT,
                notice_id=RECEIPTS_NOTICE_ID,
                notice_type=MessageKind.RECEIPT.value,
                header={"receipts": bodies},
                units={},
                grants={sender: Grant(frozenset(), (), MessageKind.RECEIPT.value)},
                handling="H0",
            )
            topic = receipts(sender)
            frame = sealed.package_for(
                sender,
                topic=topic,
                recipient_kid=kid,
                recipient_key=public_key,
                max_frame_bytes=self.max_frame_bytes,
            )
            self.stats.receipts_sent += len(bodies)
            ack: Awaitable[Any] = await producer.send(
                topic,
                frame,
                key=record_key(self.keys, sender, sealed.msg_id),  # names no notice it answers
                headers=[("nbx-kid", kid.encode())],
            )
            return ack

        return send


async def _done() -> None:
    """An already finished awaitable, for paths that produce nothing."""
