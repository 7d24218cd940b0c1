"""Publisher: seal a message once and produce one encrypted package per recipient to its inbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from broker.envelope import Grant, Sealed, seal
from broker.errors import KeyDirectoryError, NbxError
from broker.keys import BureauKeys, KeyLookup
from broker.logging import get_logger
from broker.transport import KafkaSettings, connect_error, inbox, make_producer

FORMAT_HEADER = "nbx-format"
KID_HEADER = "nbx-kid"


@dataclass(frozen=True)
class RecipientOutcome:
    """What happened for one recipient: ``sent`` or ``failed`` with a reason."""

    recipient: str
    status: str
    reason: str | None = None
    topic: str | None = None
    offset: int | None = None


@dataclass(frozen=True)
class PublishResult:
    """The outcome of one publish: the message id and one outcome per recipient."""

    msg_id: str
    notice_id: str
    outcomes: list[RecipientOutcome] = field(default_factory=list)

    @property
    def sent(self) -> list[str]:
        """Recipients whose package was acknowledged by the broker."""
        return [o.recipient for o in self.outcomes if o.status == "sent"]

    @property
    def failed(self) -> list[RecipientOutcome]:
        """Recipients that could not be sent to, with the reason."""
        return [o for o in self.outcomes if o.status != "sent"]


class Publisher:
    """Seals once and fans out to ``nbx.inbox.<CC>``; use as ``async with Publisher(...)``."""

    def __init__(self, keys: BureauKeys, directory: KeyLookup, settings: KafkaSettings) -> None:
        """Prepare a publisher for bureau ``keys.bureau`` (the producer starts on enter)."""
        self.keys = keys
        self.directory = directory
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._log = get_logger()

    async def __aenter__(self) -> Publisher:
        producer = make_producer(self.settings)
        try:
            await producer.start()
        except (KafkaError, OSError) as exc:
            await producer.stop()
            raise connect_error(self.settings.bootstrap, exc) from None
        self._producer = producer
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(
        self,
        *,
        kind: str,
        notice_id: str,
        notice_type: str,
        header: Mapping[str, Any],
        units: Mapping[str, Any],
        grants: Mapping[str, Grant],
        handling: str,
    ) -> PublishResult:
        """Seal one message for every recipient in ``grants`` and produce each package."""
        if self._producer is None:
            msg = "Publisher is not started: use 'async with Publisher(...)'"
            raise RuntimeError(msg)
        started = time.monotonic()
        sealed = seal(
            signer=self.keys,
            kind=kind,
            notice_id=notice_id,
            notice_type=notice_type,
            header=header,
            units=units,
            grants=grants,
            handling=handling,
        )
        outcomes = await asyncio.gather(*(self._send_one(sealed, r) for r in sealed.audience))
        result = PublishResult(sealed.msg_id, notice_id, list(outcomes))
        self._log.info(
            "notice.published",
            msg_id=sealed.msg_id,
            notice_id=notice_id,
            kind=kind,
            sender=self.keys.bureau,
            recipients=result.sent,
            failed=len(result.failed),
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return result

    async def _send_one(self, sealed: Sealed, recipient: str) -> RecipientOutcome:
        assert self._producer is not None
        topic = inbox(recipient)
        try:
            kid, public_key = self.directory.encryption_key(recipient)
            value = sealed.package_for(
                recipient, topic=topic, recipient_kid=kid, recipient_key=public_key
            )
            meta = await self._producer.send_and_wait(
                topic,
                value,
                key=sealed.notice_id.encode(),
                headers=[(FORMAT_HEADER, b"1"), (KID_HEADER, kid.encode())],
            )
        except KeyDirectoryError as exc:
            return RecipientOutcome(recipient, "failed", str(exc))
        except (KafkaError, NbxError) as exc:
            return RecipientOutcome(recipient, "failed", f"broker: {type(exc).__name__}")
        return RecipientOutcome(recipient, "sent", None, topic, meta.offset)
