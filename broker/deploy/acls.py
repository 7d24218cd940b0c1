"""Least privilege on the Kafka cluster, generated from the signed directory
(``nbx deploy acls``).

Every principal (:mod:`broker.transport.principals`) gets exactly what its code paths do, as
literal ACLs (never a prefix, so a bureau added later gets nothing until the ACLs are generated
again from the directory that lists it):

* a bureau ``CC`` (``User:nbx-CC``) writes the inbox and the receipts topic of every *other*
  listed bureau (publishing, forwarding, receipts); reads its own inbox and receipts in its own
  group ``nbx.CC``; writes and reads its own quarantine (``nbx quarantine list`` reads it outside
  any group); reads ``nbx.directory``; ``IdempotentWrite`` on the cluster (its producers are
  idempotent);
* an organisation (``XA``..``XZ``) also reads its own holding topic ``nbx.hold.XR`` in its group
  (its daemon subscribes to it whether or not it reviews: nothing else can write there);
* a sender under heightened supervision (``pre``) writes the holding topic of the reviewer that
  holds its messages (the first listed reviewer, as :meth:`broker.node.Publisher.holder` picks);
* the anchor operator (``User:nbx-anchor``) alone writes ``nbx.directory``.

Nobody gets ``Create``, ``Delete``, ``Alter`` or ``AlterConfigs``: the operator (a super user)
creates the topics (:mod:`broker.deploy.topics`) and applies these ACLs. ``Describe`` needs no
rule: Kafka implies it from ``Read`` and ``Write``.

:func:`authorize` evaluates ACLs as Kafka's ``StandardAuthorizer`` does (literal, wildcard and
prefixed patterns; a matching DENY wins; implied operations; deny by default); the two output
forms (:func:`kafka_acls_script`, :func:`strimzi_resources`) parse back into the same rules
(:func:`parse_kafka_acls_script`, :func:`parse_strimzi`), which is how tests/deploy checks them.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from broker.deploy.topics import TopicSpec, organisation
from broker.keys.directory import Directory
from broker.transport.principals import ANCHOR_PRINCIPAL, acl_principal, principal
from broker.transport.topics import DIRECTORY_TOPIC, group, hold, inbox, quarantine, receipts
from broker.vocab import Role


class ResourceType(StrEnum):
    """Kafka's ACL resource types NBX uses (as ``kafka-acls.sh --list`` prints them)."""

    TOPIC = "Topic"
    GROUP = "Group"
    CLUSTER = "Cluster"


class PatternType(StrEnum):
    """How an ACL's resource name matches (Kafka's ``PatternType``)."""

    LITERAL = "Literal"  # the exact name, or every name for ``*``
    PREFIXED = "Prefixed"  # every name starting with it


class Operation(StrEnum):
    """Kafka's ACL operations (``AclOperation``)."""

    ALL = "All"
    READ = "Read"
    WRITE = "Write"
    CREATE = "Create"
    DELETE = "Delete"
    ALTER = "Alter"
    DESCRIBE = "Describe"
    CLUSTER_ACTION = "ClusterAction"
    DESCRIBE_CONFIGS = "DescribeConfigs"
    ALTER_CONFIGS = "AlterConfigs"
    IDEMPOTENT_WRITE = "IdempotentWrite"


class Permission(StrEnum):
    """Whether a matching ACL allows or denies."""

    ALLOW = "Allow"
    DENY = "Deny"


#: the one name of Kafka's cluster resource
CLUSTER_NAME = "kafka-cluster"
#: a literal ACL on this name matches every resource of its type
WILDCARD = "*"

#: what Kafka implies: an ACL for the key also allows each operation of the value
IMPLIED: dict[Operation, frozenset[Operation]] = {
    Operation.DESCRIBE: frozenset(
        {Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER}
    ),
    Operation.DESCRIBE_CONFIGS: frozenset({Operation.ALTER_CONFIGS}),
}


@dataclass(frozen=True, order=True)
class Acl:
    """One ACL binding (resource pattern + entry), as Kafka stores it."""

    principal: str  # ``User:nbx-FR``
    resource_type: ResourceType
    name: str
    operation: Operation
    pattern: PatternType = PatternType.LITERAL
    permission: Permission = Permission.ALLOW
    host: str = WILDCARD


@dataclass(frozen=True, order=True)
class Access:
    """One operation a client performs on one resource (what the broker authorizes)."""

    resource_type: ResourceType
    name: str
    operation: Operation


def _matches(acl: Acl, principal_name: str, access: Access) -> bool:
    if acl.principal not in (principal_name, "User:*") or acl.resource_type != access.resource_type:
        return False
    if acl.pattern == PatternType.PREFIXED:
        return access.name.startswith(acl.name)
    return acl.name in (access.name, WILDCARD)


def authorize(acls: Iterable[Acl], principal_name: str, access: Access) -> bool:
    """Whether Kafka's ``StandardAuthorizer`` (no super user, ``allow.everyone.if.no.acl.found``
    false) lets ``principal_name`` (``User:nbx-FR``) perform ``access`` under ``acls``: a
    matching DENY for the operation (or ``All``) refuses; else a matching ALLOW for the
    operation, ``All`` or an operation that implies it (:data:`IMPLIED`) allows; else refused."""
    matching = [a for a in acls if _matches(a, principal_name, access)]
    denying = {Operation.ALL, access.operation}
    if any(a.permission == Permission.DENY and a.operation in denying for a in matching):
        return False
    allowing = denying | IMPLIED.get(access.operation, frozenset())
    return any(a.permission == Permission.ALLOW and a.operation in allowing for a in matching)


def _topic(who: str, name: str, *operations: Operation) -> list[Acl]:
    return [Acl(who, ResourceType.TOPIC, name, op) for op in operations]


def holder(directory: Directory) -> str | None:
    """The reviewer whose holding topic keeps the messages of senders under ``pre``
    supervision: the first listed reviewer (as :meth:`broker.node.Publisher.holder`)."""
    reviewers = sorted(b for b in directory.bureau_ids() if Role.REVIEWER in directory.roles(b))
    return reviewers[0] if reviewers else None


def bureau_acls(directory: Directory, bureau: str) -> list[Acl]:
    """The ACLs of ``bureau``'s principal (see the module docstring)."""
    who = acl_principal(principal(bureau))
    acls = [
        *_topic(who, inbox(bureau), Operation.READ),
        *_topic(who, receipts(bureau), Operation.READ),
        *_topic(who, quarantine(bureau), Operation.READ, Operation.WRITE),
        *_topic(who, DIRECTORY_TOPIC, Operation.READ),
        Acl(who, ResourceType.GROUP, group(bureau), Operation.READ),
        Acl(who, ResourceType.CLUSTER, CLUSTER_NAME, Operation.IDEMPOTENT_WRITE),
    ]
    if organisation(bureau):
        acls += _topic(who, hold(bureau), Operation.READ)
    for other in directory.bureau_ids():
        if other != bureau:
            acls += _topic(who, inbox(other), Operation.WRITE)
            acls += _topic(who, receipts(other), Operation.WRITE)
    held_by = holder(directory)
    if held_by is not None and bureau in directory.rules().supervised():
        acls += _topic(who, hold(held_by), Operation.WRITE)
    return acls


def anchor_acls() -> list[Acl]:
    """The anchor operator's ACLs: write ``nbx.directory`` (``nbx directory publish``)."""
    who = acl_principal(ANCHOR_PRINCIPAL)
    return [
        *_topic(who, DIRECTORY_TOPIC, Operation.WRITE),
        Acl(who, ResourceType.CLUSTER, CLUSTER_NAME, Operation.IDEMPOTENT_WRITE),
    ]


def network_acls(directory: Directory) -> list[Acl]:
    """Every principal's ACLs for the network ``directory`` lists, sorted."""
    acls = anchor_acls()
    for bureau in directory.bureau_ids():
        acls += bureau_acls(directory, bureau)
    return sorted(set(acls))


# -- kafka-acls.sh ---------------------------------------------------------------------------

_ACLS_TOOL = '"${KAFKA_BIN:-}kafka-acls.sh"'
_TOPICS_TOOL = '"${KAFKA_BIN:-}kafka-topics.sh"'
_CONNECT = '--bootstrap-server "$BOOTSTRAP" --command-config "$COMMAND_CONFIG"'
_RESOURCE_OPTION = {ResourceType.TOPIC: "--topic", ResourceType.GROUP: "--group"}


_Group = tuple[str, ResourceType, str, PatternType, Permission]


def _grouped(acls: Iterable[Acl]) -> dict[_Group, list[Acl]]:
    """``acls`` by principal, resource pattern and permission: one kafka-acls.sh call each."""
    grouped: dict[_Group, list[Acl]] = {}
    for acl in sorted(acls):
        key = (acl.principal, acl.resource_type, acl.name, acl.pattern, acl.permission)
        grouped.setdefault(key, []).append(acl)
    return grouped


def _acl_command(acls: Sequence[Acl]) -> str:
    first = acls[0]
    option = "--allow-principal" if first.permission == Permission.ALLOW else "--deny-principal"
    words = [_ACLS_TOOL, _CONNECT, "--add", option, shlex.quote(first.principal)]
    words += [f"--operation {a.operation}" for a in sorted(acls, key=lambda a: a.operation)]
    if first.resource_type == ResourceType.CLUSTER:
        words.append("--cluster")
    else:
        words += [_RESOURCE_OPTION[first.resource_type], shlex.quote(first.name)]
        words.append(f"--resource-pattern-type {first.pattern.lower()}")
    return " ".join(words)


def _topic_command(spec: TopicSpec) -> str:
    words = [
        _TOPICS_TOOL,
        _CONNECT,
        "--create --if-not-exists",
        f"--topic {shlex.quote(spec.name)}",
        f"--partitions {spec.partitions}",
        f"--replication-factor {spec.replicas}",
    ]
    words += [f"--config {shlex.quote(f'{k}={v}')}" for k, v in sorted(spec.configs.items())]
    return " ".join(words)


def kafka_acls_script(
    directory: Directory,
    acls: Sequence[Acl],
    topics: Sequence[TopicSpec],
    *,
    bootstrap: str | None = None,
    command_config: str | None = None,
) -> str:
    """A bash script for Apache Kafka's command-line tools that creates ``topics`` (when
    missing) and adds ``acls``. ``KAFKA_BOOTSTRAP`` and ``KAFKA_COMMAND_CONFIG`` (the admin's
    client properties) override ``bootstrap`` and ``command_config``; ``KAFKA_BIN`` is the folder
    of the tools (with its trailing slash) when they are not on ``PATH``."""
    lines = [
        "#!/usr/bin/env bash",
        f"# Generated by nbx deploy acls from the signed directory serial {directory.serial}.",
        "# Do not edit: generate it again after every directory change. Run it as a super user",
        "# (the admin's client properties); it creates the missing topics, then adds the ACLs.",
        "# ACLs of a bureau the directory no longer lists are not removed: remove them with",
        "#   kafka-acls.sh ... --remove --principal User:nbx-CC",
        "set -euo pipefail",
        f"BOOTSTRAP=${{KAFKA_BOOTSTRAP:-{shlex.quote(bootstrap or '')}}}",
        f"COMMAND_CONFIG=${{KAFKA_COMMAND_CONFIG:-{shlex.quote(command_config or '')}}}",
        ': "${BOOTSTRAP:?set KAFKA_BOOTSTRAP (or generate with --bootstrap)}"',
        ': "${COMMAND_CONFIG:?set KAFKA_COMMAND_CONFIG (or generate with --command-config)}"',
        "",
        "# topics",
    ]
    lines += [_topic_command(spec) for spec in topics]
    previous = None
    for (who, *_rest), grouped in _grouped(acls).items():
        if who != previous:
            lines += ["", f"# {who}"]
            previous = who
        lines.append(_acl_command(grouped))
    return "\n".join(lines) + "\n"


def _options(words: list[str]) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and i + 1 < len(words) and not words[i + 1].startswith("--"):
            found.append((word, words[i + 1]))
            i += 2
        else:
            found.append((word, None))
            i += 1
    return found


def parse_kafka_acls_script(script: str) -> tuple[list[Acl], list[TopicSpec]]:
    """The ACLs and topics a script of :func:`kafka_acls_script` adds and creates, read back from
    its ``kafka-acls.sh`` and ``kafka-topics.sh`` command lines (or from those tools' recorded
    arguments, one call a line)."""
    acls: list[Acl] = []
    topics: list[TopicSpec] = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if not words or not words[0].endswith(("kafka-acls.sh", "kafka-topics.sh")):
            continue
        options = _options(words[1:])
        if words[0].endswith("kafka-topics.sh"):
            values = dict(o for o in options if o[0] != "--config")
            configs = dict(str(v).split("=", 1) for k, v in options if k == "--config")
            topics.append(
                TopicSpec(
                    str(values["--topic"]),
                    int(str(values["--partitions"])),
                    int(str(values["--replication-factor"])),
                    configs,
                )
            )
            continue
        values = dict(options)
        permission = Permission.ALLOW if "--allow-principal" in values else Permission.DENY
        who = str(values.get("--allow-principal") or values.get("--deny-principal"))
        pattern = PatternType(str(values.get("--resource-pattern-type", "literal")).title())
        if "--cluster" in values:
            kind, name, pattern = ResourceType.CLUSTER, CLUSTER_NAME, PatternType.LITERAL
        elif "--topic" in values:
            kind, name = ResourceType.TOPIC, str(values["--topic"])
        else:
            kind, name = ResourceType.GROUP, str(values["--group"])
        acls += [
            Acl(who, kind, name, Operation(str(value)), pattern, permission)
            for option, value in options
            if option == "--operation"
        ]
    return sorted(acls), topics


# -- Strimzi ---------------------------------------------------------------------------------

STRIMZI_API = "kafka.strimzi.io/v1beta2"
STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"
#: the annotation that names a KafkaUser's NBX principal (Kubernetes names are lower case)
PRINCIPAL_ANNOTATION = "nbx/principal"


class Authentication(StrEnum):
    """How a KafkaUser authenticates (Strimzi's ``spec.authentication.type``)."""

    TLS = "tls"
    TLS_EXTERNAL = "tls-external"
    SCRAM = "scram-sha-512"


#: Strimzi's ``patternType`` names (its KafkaUser CRD, ``v1beta2``: ``literal`` or ``prefix``)
STRIMZI_PATTERN = {PatternType.LITERAL: "literal", PatternType.PREFIXED: "prefix"}


def k8s_name(name: str) -> str:
    """A Kubernetes resource name for an NBX principal or topic: lower case (``nbx-fr``,
    ``nbx.inbox.fr``)."""
    return name.lower()


def _strimzi_acl(acls: Sequence[Acl]) -> dict[str, Any]:
    first = acls[0]
    resource: dict[str, Any] = {"type": first.resource_type.lower()}
    if first.resource_type != ResourceType.CLUSTER:
        resource |= {"name": first.name, "patternType": STRIMZI_PATTERN[first.pattern]}
    return {
        "resource": resource,
        "operations": sorted(str(a.operation) for a in acls),
        "host": first.host,
        "type": first.permission.lower(),
    }


def strimzi_resources(
    acls: Sequence[Acl],
    topics: Sequence[TopicSpec],
    *,
    cluster: str,
    authentication: Authentication = Authentication.TLS,
) -> list[dict[str, Any]]:
    """A KafkaUser per principal of ``acls`` (``authorization.type: simple``) and a KafkaTopic
    per topic of ``topics``, for the Strimzi cluster named ``cluster``."""
    labels = {STRIMZI_CLUSTER_LABEL: cluster}
    by_principal: dict[str, list[Acl]] = {}
    for acl in sorted(acls):
        by_principal.setdefault(acl.principal, []).append(acl)
    resources: list[dict[str, Any]] = []
    for who, theirs in by_principal.items():
        name = who.removeprefix("User:")
        by_permission: dict[tuple[ResourceType, str, PatternType, Permission], list[Acl]] = {}
        for acl in theirs:
            key = (acl.resource_type, acl.name, acl.pattern, acl.permission)
            by_permission.setdefault(key, []).append(acl)
        resources.append(
            {
                "apiVersion": STRIMZI_API,
                "kind": "KafkaUser",
                "metadata": {
                    "name": k8s_name(name),
                    "labels": labels,
                    "annotations": {PRINCIPAL_ANNOTATION: name},
                },
                "spec": {
                    "authentication": {"type": str(authentication)},
                    "authorization": {
                        "type": "simple",
                        "acls": [_strimzi_acl(group) for group in by_permission.values()],
                    },
                },
            }
        )
    for spec in topics:
        resources.append(
            {
                "apiVersion": STRIMZI_API,
                "kind": "KafkaTopic",
                "metadata": {"name": k8s_name(spec.name), "labels": labels},
                "spec": {
                    "topicName": spec.name,
                    "partitions": spec.partitions,
                    "replicas": spec.replicas,
                    "config": dict(sorted(spec.configs.items())),
                },
            }
        )
    return resources


def strimzi_yaml(directory: Directory, resources: Sequence[dict[str, Any]]) -> str:
    """``resources`` as one multi-document YAML file (``kubectl apply -f``)."""
    import yaml

    head = (
        f"# Generated by nbx deploy acls from the signed directory serial {directory.serial}.\n"
        "# Do not edit: generate it again after every directory change.\n"
    )
    return head + yaml.safe_dump_all(resources, sort_keys=False, explicit_start=True)


def parse_strimzi(text: str) -> tuple[list[Acl], list[TopicSpec]]:
    """The ACLs (principal from :data:`PRINCIPAL_ANNOTATION`) and topics of a Strimzi file of
    :func:`strimzi_yaml`."""
    import yaml

    acls: list[Acl] = []
    topics: list[TopicSpec] = []
    for doc in yaml.safe_load_all(text):
        if doc["kind"] == "KafkaTopic":
            spec = doc["spec"]
            configs = {k: str(v) for k, v in spec["config"].items()}
            topics.append(
                TopicSpec(spec["topicName"], spec["partitions"], spec["replicas"], configs)
            )
            continue
        who = acl_principal(doc["metadata"]["annotations"][PRINCIPAL_ANNOTATION])
        for entry in doc["spec"]["authorization"]["acls"]:
            resource = entry["resource"]
            kind = ResourceType(resource["type"].title())
            name = resource.get("name", CLUSTER_NAME)
            patterns = {strimzi: ours for ours, strimzi in STRIMZI_PATTERN.items()}
            pattern = patterns[resource.get("patternType", "literal")]
            permission = Permission(entry.get("type", "allow").title())
            acls += [
                Acl(who, kind, name, Operation(op), pattern, permission, entry.get("host", "*"))
                for op in entry["operations"]
            ]
    return sorted(acls), topics
