"""The AsyncAPI 3 contract of NBX on Kafka: ``schemas/asyncapi.yaml`` (``nbx schema export``).

Built from the code, so it cannot drift: the channels are the topics of
:mod:`broker.transport.topics` (addresses with a ``{bureau}`` or ``{reviewer}`` parameter), their
Kafka bindings the partitions, replicas and configuration NBX creates them with
(:func:`broker.transport.admin.topic_config`, :class:`broker.transport.KafkaSettings`), the
quarantine's reason header the codes of :class:`broker.vocab.Reason`. The operations are what each
role does (a bureau, the trust anchor's operator, a reviewer, the oversight body); the servers show
the three ways to connect (plaintext for a development broker, TLS with a client certificate, TLS
with SCRAM-SHA-512). A record on an inbox, receipts or holding topic is an encrypted frame
(docs/architecture.md, section 4): its payload is binary, and ``x-nbx-sealed`` references the JSON
Schemas (``notice.json``, ``lifecycle.*.json``) of what the frame carries once opened.

tests/schemas/test_asyncapi.py validates the exported document with the official AsyncAPI
parser (``@asyncapi/parser``) and checks it against these sources.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import yaml

from broker.transport import KafkaSettings
from broker.transport.admin import topic_config
from broker.transport.principals import ANCHOR_PRINCIPAL, PREFIX
from broker.transport.topics import (
    DIRECTORY_TOPIC,
    HOLD_HEADER,
    HOLD_TO_HEADER,
    group,
    hold,
    inbox,
    quarantine,
    receipts,
)
from broker.vocab import Reason, Role

#: the file ``nbx schema export`` writes the document to, beside the JSON Schemas
FILE_NAME: Final = "asyncapi.yaml"
ASYNCAPI_VERSION: Final = "3.0.0"
KAFKA_BINDING_VERSION: Final = "0.5.0"
#: the JSON Schemas are plain JSON Schema (not AsyncAPI Schema: pydantic writes an OpenAPI-style
#: ``discriminator`` object), so they are referenced as Multi Format Schema Objects
JSON_SCHEMA_FORMAT: Final = "application/schema+json;version=draft-07"

#: record headers (their constants live above this layer: broker.node.publisher and
#: broker.node.quarantine; tests/schemas/test_asyncapi.py checks they are equal)
FORMAT_HEADER: Final = "nbx-format"
KID_HEADER: Final = "nbx-kid"
REASON_HEADER: Final = "nbx-reason"
SOURCE_HEADER: Final = "nbx-source"
TRUNCATED_HEADER: Final = "nbx-truncated-from"
DROPPED_HEADER: Final = "nbx-dropped"
#: the record key of the directory topic (broker.keys.directory_topic.DIRECTORY_KEY)
DIRECTORY_KEY: Final = "directory"
#: the format of a directory body (broker.keys.directory.DIRECTORY_FORMAT)
DIRECTORY_FORMAT: Final = "nbx-directory/1"

#: a bureau id standing for the channel parameter when a topic name is built
_EXAMPLE = "FR"
#: the development server's address (a broker of `nbx dev-broker` on its usual port)
DEVELOPMENT_BOOTSTRAP: Final = "127.0.0.1:9092"
#: the client id NBX's clients send (KafkaSettings.client_id)
_CLIENT_ID: Final = KafkaSettings(bootstrap=DEVELOPMENT_BOOTSTRAP).client_id
_BINARY = {"type": "string", "format": "binary"}
_STRING = {"type": "string"}


def _address(make: Any, parameter: str) -> str:
    """``nbx.inbox.{bureau}`` from :func:`broker.transport.topics.inbox`."""
    name: str = make(_EXAMPLE)
    return name.removesuffix(_EXAMPLE) + "{" + parameter + "}"


def _kafka_channel(topic: str, settings: KafkaSettings) -> dict[str, Any]:
    """The Kafka channel binding of ``topic`` (any concrete name of the channel)."""
    config: dict[str, Any] = {}
    for key, value in topic_config(topic, settings.topic_retention_ms).items():
        if key == "cleanup.policy":
            config[key] = value.split(",")
        elif value.isdigit():
            config[key] = int(value)
        else:
            config[key] = value
    partitions = 1 if topic == DIRECTORY_TOPIC else settings.topic_partitions
    return {
        "partitions": partitions,
        "replicas": settings.topic_replication,
        "topicConfiguration": config,
        "bindingVersion": KAFKA_BINDING_VERSION,
    }


def _headers(required: dict[str, str], optional: dict[str, str] | None = None) -> dict[str, Any]:
    props = {name: {"type": "string", "description": text} for name, text in required.items()}
    props.update(
        {name: {"type": "string", "description": text} for name, text in (optional or {}).items()}
    )
    return {"type": "object", "properties": props, "required": sorted(required)}


def _key(description: str) -> dict[str, Any]:
    key = {**_STRING, "description": description}
    return {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}}


_OPAQUE_KEY = (
    "Opaque record key: base64url of 16 bytes of HMAC-SHA256 under a secret of the sender, over "
    "the recipient and the notice id (stable per notice and recipient, meaningless to the broker)."
)
_KID = "The recipient's encryption key id the frame is sealed to (the only visible field)."


def _messages(schema_files: list[str]) -> dict[str, Any]:
    sealed_notice = [
        {"$ref": f"#/components/schemas/{_schema_key(f)}"}
        for f in schema_files
        if f != "lifecycle.receipt.json" and not _is_per_type(f)
    ]
    package_headers = {FORMAT_HEADER: "The frame format version (`1`).", KID_HEADER: _KID}
    return {
        "package": {
            "name": "package",
            "title": "Encrypted package",
            "summary": "A signed, encrypted message about a notice, sealed to one recipient.",
            "contentType": "application/octet-stream",
            "headers": _headers(package_headers),
            "payload": {
                **_BINARY,
                "description": (
                    "An NBX frame: magic `NBX\\0`, format version, suite, the recipient's key "
                    "id, then the HPKE ciphertext of the package (statement, signature, "
                    "disclosures), padded to a size bucket. Once opened, the disclosed fields "
                    "form a notice or a lifecycle message (x-nbx-sealed)."
                ),
                "x-nbx-sealed": {"oneOf": sealed_notice},
            },
            "bindings": _key(_OPAQUE_KEY),
        },
        "held": {
            "name": "held",
            "title": "Package held for review",
            "summary": "A package of a sender under heightened supervision, for its reviewer.",
            "contentType": "application/octet-stream",
            "headers": _headers(
                {
                    **package_headers,
                    HOLD_TO_HEADER: "The final recipient (a bureau id).",
                    HOLD_HEADER: "The statement hash of the message the reviewer judges.",
                }
            ),
            "payload": {
                **_BINARY,
                "description": "The encrypted frame for its final recipient, as on an inbox.",
                "x-nbx-sealed": {"oneOf": sealed_notice},
            },
            "bindings": _key(_OPAQUE_KEY),
        },
        "receipt": {
            "name": "receipt",
            "title": "Encrypted receipt",
            "summary": "A recipient's signed receipts for the sender's messages (one per batch).",
            "contentType": "application/octet-stream",
            "headers": _headers({KID_HEADER: _KID}),
            "payload": {
                **_BINARY,
                "description": "An NBX frame sealing a message of kind `receipt`.",
                "x-nbx-sealed": {"$ref": "#/components/schemas/lifecycle.receipt"},
            },
            "bindings": _key("Opaque record key over the receipt message's id."),
        },
        "quarantined": {
            "name": "quarantined",
            "title": "Quarantined record",
            "summary": "A record the daemon did not store, kept as evidence with its reason.",
            "contentType": "application/octet-stream",
            "headers": {
                "type": "object",
                "properties": {
                    REASON_HEADER: {
                        "type": "string",
                        "enum": [r.value for r in Reason],
                        "description": "The reason code (docs/reason-codes.md).",
                    },
                    SOURCE_HEADER: {
                        "type": "string",
                        "description": "Where the record was read: `topic:partition:offset`.",
                    },
                    TRUNCATED_HEADER: {
                        "type": "string",
                        "description": "The original size, when the value was cut.",
                    },
                    DROPPED_HEADER: {
                        "type": "string",
                        "description": "The original size, when the value was not kept.",
                    },
                },
                "required": [REASON_HEADER, SOURCE_HEADER],
            },
            "payload": {
                **_BINARY,
                "description": (
                    "The raw record as read (evidence); empty for a valid package this bureau "
                    "chose not to receive."
                ),
            },
            "bindings": _key("`topic:partition:offset` of the record."),
        },
        "directory": {
            "name": "directory",
            "title": "Signed key directory",
            "summary": "Every bureau's keys and roles and the network rules, signed by the anchor.",
            "contentType": "application/json",
            "payload": {
                "type": "object",
                "required": ["directory", "signature"],
                "additionalProperties": False,
                "properties": {
                    "directory": {
                        "type": "object",
                        "description": "The body (broker.keys.directory.DirectoryBody).",
                        "required": ["format", "serial", "issued_at", "anchor_kid"],
                        "properties": {
                            "format": {"type": "string", "const": DIRECTORY_FORMAT},
                            "serial": {"type": "integer", "minimum": 1},
                            "issued_at": {"type": "string", "format": "date-time"},
                            "anchor_kid": _STRING,
                            "bureaus": {"type": "array", "items": {"type": "object"}},
                            "rules": {"type": "object"},
                        },
                    },
                    "signature": {
                        **_STRING,
                        "description": "base64url Ed25519 signature of the trust anchor.",
                    },
                },
            },
            "bindings": _key(f"Always `{DIRECTORY_KEY}` (the topic is compacted)."),
        },
    }


def _is_per_type(name: str) -> bool:
    """``notice.red.json``: a type's schema (``notice.json`` is their union)."""
    return name.startswith("notice.") and name != "notice.json"


def _schema_key(name: str) -> str:
    """``lifecycle.update.json`` -> ``lifecycle.update``."""
    return name.removesuffix(".json")


def _channels(settings: KafkaSettings) -> dict[str, Any]:
    bureau = {
        "description": "A bureau id: ISO 3166-1 alpha-2, or XA..XZ for a network body.",
        "examples": ["FR", "DE", "XR"],
    }
    reviewer = {
        "description": "The id of a bureau with the role `reviewer` (XA..XZ).",
        "examples": ["XR"],
    }

    def channel(make: Any, param: str, spec: dict[str, Any], **rest: Any) -> dict[str, Any]:
        return {
            "address": _address(make, param),
            "parameters": {param: spec},
            **rest,
            "bindings": {"kafka": _kafka_channel(make(_EXAMPLE), settings)},
        }

    return {
        "inbox": channel(
            inbox,
            "bureau",
            bureau,
            title="Inbox of a bureau",
            description="Every bureau writes the packages addressed to `{bureau}` here.",
            messages={"package": {"$ref": "#/components/messages/package"}},
        ),
        "receipts": channel(
            receipts,
            "bureau",
            bureau,
            title="Receipts for a bureau",
            description="Recipients write their receipts for `{bureau}`'s messages here.",
            messages={"receipt": {"$ref": "#/components/messages/receipt"}},
        ),
        "quarantine": channel(
            quarantine,
            "bureau",
            bureau,
            title="Quarantine of a bureau",
            description="`{bureau}`'s daemon puts the records it did not store here.",
            messages={"quarantined": {"$ref": "#/components/messages/quarantined"}},
        ),
        "hold": channel(
            hold,
            "reviewer",
            reviewer,
            title="Holding topic of a reviewer",
            description=(
                "Senders under heightened supervision (`pre`) put their packages here until "
                "`{reviewer}` approves them and forwards them to the inboxes (docs/safeguards.md)."
            ),
            messages={"held": {"$ref": "#/components/messages/held"}},
        ),
        "directory": {
            "address": DIRECTORY_TOPIC,
            "title": "Key directory",
            "description": "The signed key directory, written by the trust anchor's operator.",
            "messages": {"directory": {"$ref": "#/components/messages/directory"}},
            "bindings": {"kafka": _kafka_channel(DIRECTORY_TOPIC, settings)},
        },
    }


def _group_binding(description: str) -> dict[str, Any]:
    own = group(_EXAMPLE).removesuffix(_EXAMPLE)
    return {
        "kafka": {
            "groupId": {
                "type": "string",
                "pattern": "^" + own.replace(".", "\\.") + "([A-Z]{2})$",
                "description": description,
            },
            "clientId": {"type": "string", "const": _CLIENT_ID},
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


#: the roles an operation is performed in (tags); a principal's ACLs follow them (nbx deploy acls)
ROLE_TAGS: Final = {
    "bureau": f"Any bureau of the network (principal `User:{PREFIX}<CC>`, role `{Role.MEMBER}`).",
    "anchor": f"The trust anchor's operator (principal `User:{ANCHOR_PRINCIPAL}`).",
    "reviewer": f"A bureau with the role `{Role.REVIEWER}` (principal `User:{PREFIX}<XR>`).",
    "oversight": f"A bureau with the role `{Role.OVERSIGHT}` (principal `User:{PREFIX}<XO>`).",
}


def _operation(
    action: str,
    channel: str,
    message: str,
    roles: list[str],
    summary: str,
    description: str | None = None,
    *,
    group_of: str | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}],
        "tags": [{"name": r} for r in roles],
    }
    if description:
        op["description"] = description
    if group_of is not None:
        op["bindings"] = _group_binding(group_of)
    return op


def _operations() -> dict[str, Any]:
    own_group = "The bureau's own consumer group `nbx.<CC>`."
    return {
        "sendPackage": _operation(
            "send",
            "inbox",
            "package",
            ["bureau", "reviewer", "oversight"],
            "Send a message about a notice to another bureau's inbox.",
            "A bureau publishes notices and lifecycle messages; the oversight body sends block, "
            "unblock and delete; a reviewer sends its reviews and forwards approved held "
            "packages to their recipients' inboxes.",
        ),
        "receivePackages": _operation(
            "receive",
            "inbox",
            "package",
            ["bureau", "reviewer", "oversight"],
            "Consume the bureau's own inbox (the daemon, `nbx consume`).",
            group_of=own_group,
        ),
        "sendReceipt": _operation(
            "send",
            "receipts",
            "receipt",
            ["bureau", "reviewer", "oversight"],
            "Send signed receipts to the sender of the messages received.",
        ),
        "receiveReceipts": _operation(
            "receive",
            "receipts",
            "receipt",
            ["bureau", "reviewer", "oversight"],
            "Consume the receipts for the bureau's own messages.",
            group_of=own_group,
        ),
        "quarantineRecord": _operation(
            "send",
            "quarantine",
            "quarantined",
            ["bureau", "reviewer", "oversight"],
            "Put a record the daemon did not store into the bureau's own quarantine.",
        ),
        "readQuarantine": _operation(
            "receive",
            "quarantine",
            "quarantined",
            ["bureau", "reviewer", "oversight"],
            "Read the bureau's own quarantine (`nbx quarantine list|show`).",
        ),
        "holdPackage": _operation(
            "send",
            "hold",
            "held",
            ["bureau"],
            "A sender under heightened supervision (`pre`) puts a package on its reviewer's "
            "holding topic.",
        ),
        "receiveHeld": _operation(
            "receive",
            "hold",
            "held",
            ["reviewer"],
            "The reviewer consumes its holding topic.",
            group_of="The reviewer's own consumer group `nbx.<XR>`.",
        ),
        "publishDirectory": _operation(
            "send",
            "directory",
            "directory",
            ["anchor"],
            "Publish a signed key directory (`nbx directory publish`): the anchor alone.",
        ),
        "readDirectory": _operation(
            "receive",
            "directory",
            "directory",
            ["bureau", "reviewer", "oversight"],
            'Read the directory to its end and follow it (`[trust] directory = "topic"`).',
        ),
    }


def _servers() -> dict[str, Any]:
    return {
        "development": {
            "host": DEVELOPMENT_BOOTSTRAP,
            "protocol": "kafka",
            "title": "Development broker",
            "description": (
                "A plaintext Kafka-protocol broker for development and tests (`nbx dev-broker`, "
                '`[kafka] security_protocol = "PLAINTEXT"`); never for real notices.'
            ),
        },
        "production-mtls": {
            "host": "{host}:{port}",
            "protocol": "kafka-secure",
            "title": "Kafka with TLS and client certificates",
            "description": (
                '`[kafka] security_protocol = "SSL"` with `ssl_cafile`, `ssl_certfile` and '
                "`ssl_keyfile`: the client certificate's CN is the bureau's principal "
                f"(`{PREFIX}<CC>`, `nbx deploy certs`)."
            ),
            "variables": {
                "host": {"default": "kafka.example.org", "description": "A bootstrap broker."},
                "port": {"default": "9093", "description": "Its SSL listener."},
            },
            "security": [{"$ref": "#/components/securitySchemes/mtls"}],
        },
        "production-scram": {
            "host": "{host}:{port}",
            "protocol": "kafka-secure",
            "title": "Kafka with TLS and SCRAM-SHA-512",
            "description": (
                '`[kafka] security_protocol = "SASL_SSL"`, `sasl_mechanism = '
                '"SCRAM-SHA-512"`, `sasl_username` the bureau\'s principal; the password only '
                "from the environment variable named by `sasl_password_env`."
            ),
            "variables": {
                "host": {"default": "kafka.example.org", "description": "A bootstrap broker."},
                "port": {"default": "9094", "description": "Its SASL_SSL listener."},
            },
            "security": [{"$ref": "#/components/securitySchemes/scram"}],
        },
    }


def asyncapi_document(
    schema_files: Iterable[str], settings: KafkaSettings | None = None
) -> dict[str, Any]:
    """The AsyncAPI 3 document as a dict; ``schema_files`` are the JSON Schema file names beside
    it (``notice.json``, ``lifecycle.update.json``, ...) that payloads reference."""
    files = sorted(schema_files)
    settings = settings if settings is not None else KafkaSettings(bootstrap=DEVELOPMENT_BOOTSTRAP)
    referenced = [f for f in files if not _is_per_type(f)]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "NBX notice exchange",
            "version": "1",
            "description": (
                "Signed, end-to-end encrypted notice exchange between national police bureaus "
                "over Kafka. Generated by `nbx schema export` from the code (topics, topic "
                "configuration, headers, reason codes); docs/architecture.md sections 4 and 5 "
                "describe the wire format and the topics."
            ),
            "license": {"name": "Apache-2.0"},
            "tags": [{"name": name, "description": text} for name, text in ROLE_TAGS.items()],
        },
        "defaultContentType": "application/octet-stream",
        "servers": _servers(),
        "channels": _channels(settings),
        "operations": _operations(),
        "components": {
            "schemas": {
                _schema_key(f): {"schemaFormat": JSON_SCHEMA_FORMAT, "schema": {"$ref": f"./{f}"}}
                for f in referenced
            },
            "messages": _messages(files),
            "securitySchemes": {
                "mtls": {
                    "type": "X509",
                    "description": (
                        "Mutual TLS: the broker verifies the client certificate (CN "
                        f"`{PREFIX}<CC>`, or `{ANCHOR_PRINCIPAL}` for the anchor's operator)."
                    ),
                },
                "scram": {
                    "type": "scramSha512",
                    "description": (
                        f"SASL/SCRAM-SHA-512 over TLS; user `{PREFIX}<CC>` "
                        f"(or `{ANCHOR_PRINCIPAL}`)."
                    ),
                },
            },
        },
    }


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by several channels out in full each time (no ``&id001``
    anchors and ``*id001`` aliases: the document is read by people as much as by tools)."""

    def ignore_aliases(self, data: object) -> bool:
        """Never write an alias."""
        return True


def render_asyncapi(schema_files: Iterable[str], settings: KafkaSettings | None = None) -> str:
    """The document as YAML text (deterministic: the same input gives the same bytes)."""
    text: str = yaml.dump(
        asyncapi_document(schema_files, settings),
        Dumper=_PlainDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    return "# Generated by `nbx schema export` (broker/schemas/asyncapi.py): do not edit.\n" + text
