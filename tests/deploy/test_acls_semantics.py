"""Least privilege, proven on the code paths: the operations every role really performs are
recorded by running them (publisher, daemon, reviewer, oversight, anchor publish, directory
reader, quarantine reader, topic checks) over recording wrappers of the transport seams
(tests/deploy/recording.py, in memory, no broker), then evaluated under Kafka's ACL semantics
against what ``nbx deploy acls`` generates: each is allowed, every generated rule is used by
some recorded operation (nothing more is granted), and the forbidden ones are denied."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from broker.deploy import acls as generate
from broker.deploy.acls import Access, Acl, Operation, ResourceType
from broker.deploy.topics import network_topics
from broker.keys.directory import Directory
from broker.keys.files import load_anchor_public_key
from broker.node import ConsumerDaemon, Publisher
from broker.testing import MemoryBroker
from broker.transport import KafkaSettings
from broker.transport.principals import ANCHOR_PRINCIPAL, acl_principal, principal
from broker.transport.topics import DIRECTORY_TOPIC, group, hold, inbox, quarantine, receipts
from tests.deploy import recording
from tests.deploy.recording import AssignedConsumer, Ops, RecordingTopics, RecordingTransport
from tests.node.helpers import Net, example, memory_net, wait_for

BUREAUS = ("IT", "FR", "XR", "XO")
ROLES = {"XR": ["reviewer"], "XO": ["oversight"]}
#: the producers NBX builds are idempotent unless a development broker cannot be
IDEMPOTENT = KafkaSettings.enable_idempotence


class RecordedNet(Net):
    """A network in memory whose every node records its operations under its principal."""

    def __init__(
        self,
        folder: Path,
        bureaus: tuple[str, ...] = BUREAUS,
        roles: dict[str, list[str]] | None = None,
    ) -> None:
        base = memory_net(folder, bureaus, roles=roles or ROLES, supervise={"IT": "pre"})
        self.__dict__.update(base.__dict__)
        self.ops: defaultdict[str, Ops] = defaultdict(set)
        self.ensured: set[str] = set()

    @property
    def broker(self) -> MemoryBroker:
        assert self.kafka is not None
        return self.kafka

    def transport(self, cc: str) -> RecordingTransport:
        ops = self.ops[acl_principal(principal(cc))]
        return RecordingTransport(self.broker, ops, self.ensured, idempotent=IDEMPOTENT)

    def daemon(self, cc: str) -> ConsumerDaemon:
        if cc not in self.daemons:
            self.daemons[cc] = ConsumerDaemon.from_config(
                self.configs[cc], transport=self.transport(cc)
            )
        return self.daemons[cc]

    def publisher(self, cc: str) -> Publisher:
        return Publisher.from_config(self.configs[cc], transport=self.transport(cc))

    def idle(self) -> bool:
        """Every daemon committed every record of every topic it reads."""
        for cc, daemon in self.daemons.items():
            for name in daemon._reads():
                committed = self.broker.committed.get((group(cc), TopicPartition(name, 0)), 0)
                if committed != len(self.broker.log(name)):
                    return False
        return True


@pytest.fixture
def patched_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[RecordedNet, str], None]:
    """``use(net, who)``: the directory's and quarantine's readers, the directory producer and
    the anchor's topic manager record into ``who``'s operations from now on."""

    def use(net: RecordedNet, who: str) -> None:
        import broker.keys.directory_topic as directory_topic
        import broker.node.quarantine as quarantine_reader
        from broker.testing import KnownTopics, MemoryProducer

        ops = net.ops[who]

        def reader(_settings: KafkaSettings) -> Any:
            return AssignedConsumer(net.broker, ops)

        def producer(_settings: KafkaSettings) -> Any:
            return recording.RecordingProducer(
                MemoryProducer(net.broker), ops, idempotent=IDEMPOTENT
            )

        def topics(_settings: KafkaSettings) -> Any:
            return RecordingTopics(KnownTopics(net.broker), ops, net.ensured)

        monkeypatch.setattr(directory_topic, "make_directory_reader", reader)
        monkeypatch.setattr(directory_topic, "make_directory_producer", producer)
        monkeypatch.setattr(directory_topic, "TopicManager", topics)
        monkeypatch.setattr(quarantine_reader, "make_directory_reader", reader)

    return use


async def _run_every_path(net: RecordedNet, use: Callable[[RecordedNet, str], None]) -> Directory:
    """Every role's code paths: publish (direct and held), receive and receipt, respond,
    cancel, review and forward, oversight, quarantine and its listing, the anchor's publish,
    directory reads."""
    from broker.keys.directory_topic import fetch_directory, publish_directory
    from broker.node.quarantine import read_quarantine

    config = net.configs["FR"]
    anchor = load_anchor_public_key(config.trust.anchor)
    directory = Directory.load(Path(config.trust.directory), anchor)
    settings = config.kafka_settings()

    use(net, acl_principal(ANCHOR_PRINCIPAL))
    await publish_directory(settings, directory.signed)

    await net.start(*BUREAUS)
    for cc in BUREAUS:  # a notice no rule holds back, to everyone: inboxes and receipts
        notice = example("yellow", issuing_bureau=cc, notice_id=f"{cc}-2025-0001")
        await net.publish(cc, notice, "all")
    assert await wait_for(net.idle)

    async def respond(pub: Publisher) -> None:
        result = await pub.respond("IT-2025-0001", "located")
        assert result.sent == ["IT"]

    await net.with_publisher("FR", respond)

    async def cancel(pub: Publisher) -> None:
        notice_id = "FR-2025-0001"
        details = {"notice_id": notice_id, "reason": "arrested", "withdraw": True}
        result = await pub.lifecycle(
            "cancel", notice_id, "yellow", pub.recipients_of(notice_id), details=details
        )
        assert sorted(result.sent) == ["IT", "XO", "XR"]

    await net.with_publisher("FR", cancel)
    # IT is under `pre`: its red notice waits on XR's holding topic until XR approves
    held = await net.publish("IT", example("red"), ["FR", "XO"])
    assert {o.topic for o in held.outcomes} == {hold("XR"), inbox("XR")}
    xr = net.daemon("XR")
    assert await wait_for(lambda: xr.stats.held == 2)

    async def review(pub: Publisher) -> None:
        assert held.statement_hash is not None
        await pub.review(
            subject_sender="IT",
            subject_msg_id=held.msg_id,
            notice_id=held.notice_id,
            notice_type="red",
            statement_hash=held.statement_hash,
            decision="approved",
            grounds=(),
            reason="checked",
            to=["FR", "IT", "XO"],
        )
        forwarded = await pub.forward_held(held.statement_hash, held.notice_id)
        assert sorted(o.recipient for o in forwarded) == ["FR", "XO"]

    await net.with_publisher("XR", review)

    async def block(pub: Publisher) -> None:
        await pub.oversight(
            "block",
            subject_sender="IT",
            notice_id=held.notice_id,
            notice_type="red",
            case_ref="C-1",
            reason="challenge",
            to=["FR", "IT", "XR"],
        )

    await net.with_publisher("XO", block)
    for cc in BUREAUS:  # a record that is no package: quarantined by each daemon
        net.broker.append(inbox(cc), b"not a package", key=b"k")
    assert await wait_for(lambda: all(d.stats.quarantined >= 1 for d in net.daemons.values()))
    assert await wait_for(net.idle)
    await net.stop()

    for cc in BUREAUS:  # nbx quarantine list, nbx directory fetch (and the daemon's follower)
        use(net, acl_principal(principal(cc)))
        assert await read_quarantine(net.configs[cc].kafka_settings(), cc)
        fetched = await fetch_directory(net.configs[cc].kafka_settings(), anchor)
        assert fetched.serial == directory.serial
    return directory


async def test_generated_acls_allow_exactly_what_every_role_does(
    tmp_path: Path, patched_clients: Callable[[RecordedNet, str], None]
) -> None:
    """Every operation each principal performed is allowed by the generated ACLs under Kafka's
    semantics; every generated ACL is needed by one of them; every topic the code ensures is
    one the operator creates (so no principal needs Create)."""
    net = RecordedNet(tmp_path)
    directory = await _run_every_path(net, patched_clients)
    acls = generate.network_acls(directory)

    refused = [
        (who, access)
        for who, ops in sorted(net.ops.items())
        for access in sorted(ops)
        if not generate.authorize(acls, who, access)
    ]
    assert refused == []
    unused = [
        acl
        for acl in acls
        if not any(
            generate.authorize([acl], acl.principal, access) for access in net.ops[acl.principal]
        )
    ]
    assert unused == []
    assert net.ensured <= set(network_topics(directory))
    assert set(net.ops) == {acl.principal for acl in acls}
    # what the recording saw, in a few words (a change in the code paths shows here first)
    fr = net.ops["User:nbx-FR"]
    assert recording.group(group("FR"), Operation.READ) in fr
    assert recording.topic(receipts("IT"), Operation.WRITE) in fr
    assert recording.topic(hold("XR"), Operation.WRITE) in net.ops["User:nbx-IT"]
    assert recording.topic(hold("XR"), Operation.READ) in net.ops["User:nbx-XR"]
    assert recording.topic(DIRECTORY_TOPIC, Operation.WRITE) in net.ops["User:nbx-anchor"]


def _forbidden(directory: Directory) -> Iterator[tuple[str, Access, str]]:
    """(principal, operation, why) for everything no NBX principal may do."""
    bureaus = directory.bureau_ids()
    topics = network_topics(directory)
    for cc, other in itertools.permutations(bureaus, 2):
        who = acl_principal(principal(cc))
        for name in (inbox(other), receipts(other), quarantine(other)):
            yield who, recording.topic(name, Operation.READ), f"{cc} reads {name}"
        yield who, recording.group(group(other), Operation.READ), f"{cc} joins {group(other)}"
        yield who, recording.group(group(other), Operation.DESCRIBE), f"{cc} sees {group(other)}"
        yield who, recording.topic(quarantine(other), Operation.WRITE), f"{cc} fills {other}'s"
    everyone = [acl_principal(principal(cc)) for cc in bureaus]
    for who in everyone:
        yield (
            who,
            recording.topic(DIRECTORY_TOPIC, Operation.WRITE),
            "a bureau writes the directory",
        )
        for cc in bureaus:  # nobody writes its own inbox or receipts
            if who == acl_principal(principal(cc)):
                for name in (inbox(cc), receipts(cc)):
                    yield who, recording.topic(name, Operation.WRITE), f"{cc} writes its {name}"
    for who in [*everyone, acl_principal(ANCHOR_PRINCIPAL)]:
        for name in [*topics, "nbx.inbox.ZZ", "other.topic"]:
            for op in (
                Operation.DELETE,
                Operation.ALTER,
                Operation.ALTER_CONFIGS,
                Operation.CREATE,
            ):
                yield who, recording.topic(name, op), f"{op} {name}"
        for op in (Operation.ALTER, Operation.ALTER_CONFIGS, Operation.CREATE):
            yield who, Access(ResourceType.CLUSTER, generate.CLUSTER_NAME, op), f"cluster {op}"
        yield who, recording.topic("nbx.inbox.ZZ", Operation.WRITE), "an unlisted bureau's inbox"
    for who in [acl_principal(principal(cc)) for cc in ("FR", "XO")]:
        yield who, recording.topic(hold("XR"), Operation.READ), "a non-reviewer reads held"
        yield who, recording.topic(hold("XR"), Operation.WRITE), "an unsupervised sender holds"
    anchor = acl_principal(ANCHOR_PRINCIPAL)
    for name in topics:
        if name != DIRECTORY_TOPIC:
            for op in (Operation.READ, Operation.WRITE):
                yield anchor, recording.topic(name, op), f"the anchor {op}s {name}"


def test_generated_acls_deny_the_forbidden(tmp_path: Path) -> None:
    """Reading another bureau's inbox, receipts or quarantine, joining its group, writing the
    directory (any bureau), deleting topics, altering configs, creating topics: all denied."""
    net = memory_net(tmp_path, BUREAUS, roles=ROLES, supervise={"IT": "pre"})
    config = net.configs["FR"]
    directory = Directory.load(
        Path(config.trust.directory), load_anchor_public_key(config.trust.anchor)
    )
    acls = generate.network_acls(directory)
    allowed = [
        why for who, access, why in _forbidden(directory) if generate.authorize(acls, who, access)
    ]
    assert allowed == []


READ_FR = Access(ResourceType.TOPIC, "nbx.inbox.FR", Operation.READ)
FR = "User:nbx-FR"


@pytest.mark.parametrize(
    ("rules", "access", "allowed"),
    [
        ([], READ_FR, False),  # deny by default
        ([Acl(FR, ResourceType.TOPIC, "nbx.inbox.FR", Operation.READ)], READ_FR, True),
        ([Acl(FR, ResourceType.TOPIC, "nbx.inbox.F", Operation.READ)], READ_FR, False),
        (
            [
                Acl(
                    FR,
                    ResourceType.TOPIC,
                    "nbx.inbox.",
                    Operation.READ,
                    generate.PatternType.PREFIXED,
                )
            ],
            READ_FR,
            True,
        ),
        ([Acl(FR, ResourceType.TOPIC, "*", Operation.READ)], READ_FR, True),
        ([Acl("User:*", ResourceType.TOPIC, "nbx.inbox.FR", Operation.ALL)], READ_FR, True),
        ([Acl("User:nbx-DE", ResourceType.TOPIC, "nbx.inbox.FR", Operation.READ)], READ_FR, False),
        ([Acl(FR, ResourceType.GROUP, "nbx.inbox.FR", Operation.READ)], READ_FR, False),
        ([Acl(FR, ResourceType.TOPIC, "nbx.inbox.FR", Operation.WRITE)], READ_FR, False),
        (
            [
                Acl(FR, ResourceType.TOPIC, "nbx.", Operation.ALL, generate.PatternType.PREFIXED),
                Acl(
                    FR,
                    ResourceType.TOPIC,
                    "nbx.inbox.FR",
                    Operation.READ,
                    permission=generate.Permission.DENY,
                ),
            ],
            READ_FR,
            False,
        ),  # DENY over ALLOW
        (
            [Acl(FR, ResourceType.TOPIC, "nbx.inbox.FR", Operation.WRITE)],
            Access(ResourceType.TOPIC, "nbx.inbox.FR", Operation.DESCRIBE),
            True,
        ),  # Describe implied by Write
        (
            [Acl(FR, ResourceType.TOPIC, "nbx.inbox.FR", Operation.DESCRIBE)],
            READ_FR,
            False,
        ),  # but not the other way round
        (
            [Acl(FR, ResourceType.TOPIC, "t", Operation.ALTER_CONFIGS)],
            Access(ResourceType.TOPIC, "t", Operation.DESCRIBE_CONFIGS),
            True,
        ),
    ],
)
def test_kafka_acl_semantics(rules: list[Acl], access: Access, allowed: bool) -> None:
    """The evaluator follows Kafka's StandardAuthorizer: literal, wildcard and prefixed names,
    principal wildcard, DENY over ALLOW, implied Describe / DescribeConfigs, deny by default."""
    assert generate.authorize(rules, FR, access) is allowed


async def test_a_supervised_sender_writes_only_its_holders_topic(tmp_path: Path) -> None:
    """With two reviewers, IT's held packages go to the first one's holding topic (XR), and
    the generated ACLs let IT write there and nowhere else held; each reviewer reads its own."""
    net = RecordedNet(tmp_path, ("IT", "FR", "XR", "XS"), {"XR": ["reviewer"], "XS": ["reviewer"]})
    await net.start("FR", "XR", "XS")
    try:
        held = await net.publish("IT", example("red"), ["FR"])
        assert {o.topic for o in held.outcomes} == {hold("XR"), inbox("XR")}
        assert await wait_for(net.idle)
    finally:
        await net.stop()
    config = net.configs["IT"]
    directory = Directory.load(
        Path(config.trust.directory), load_anchor_public_key(config.trust.anchor)
    )
    acls = generate.network_acls(directory)
    it, xs = "User:nbx-IT", "User:nbx-XS"
    assert recording.topic(hold("XR"), Operation.WRITE) in net.ops[it]
    assert [a for a in net.ops[it] if not generate.authorize(acls, it, a)] == []
    assert not generate.authorize(acls, it, recording.topic(hold("XS"), Operation.WRITE))
    assert recording.topic(hold("XS"), Operation.READ) in net.ops[xs]
    assert generate.authorize(acls, xs, recording.topic(hold("XS"), Operation.READ))
    assert not generate.authorize(acls, xs, recording.topic(hold("XR"), Operation.READ))
