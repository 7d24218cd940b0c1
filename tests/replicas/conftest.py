"""The broker of the failover tests: tansu, whatever ``NBX_TEST_BROKER`` says.

A killed replica's partitions move to the other replica only when the group coordinator expires
the dead member's session (``session.timeout.ms``), as Apache Kafka does. tansu does; noida-db
0.2.3 never expires a member that stopped heartbeating (measured: two plain aiokafka consumers of
one group, one SIGKILLed, the other gets no new assignment in 40 s, with or without static
membership), so a failover cannot be shown on it. tansu stamps no LogAppendTime and has no
idempotent producer: the nodes of these tests are configured for that.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from broker import devbroker
from broker.errors import DevBrokerError


@pytest.fixture
def failover_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[devbroker.DevBroker]:
    """A tansu broker for one test (clean topics and groups), stopped by pid; every node
    configured from now on (and every ``nbx`` process) accepts its CreateTime stamps and does not
    pace its fetches."""
    monkeypatch.setenv("NBX_KAFKA__REQUIRE_LOG_APPEND_TIME", "false")
    monkeypatch.setenv("NBX_KAFKA__PACE_EMPTY_FETCHES", "false")
    try:
        broker = devbroker.start("tansu", timeout_s=60)
    except DevBrokerError as exc:
        pytest.fail(f"the tansu test broker did not start: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()
