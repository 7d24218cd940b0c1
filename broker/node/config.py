"""Node configuration: one TOML file per bureau, overridable by ``NBX_*`` environment variables.

Every key, default and override is listed in docs/node-toml.md, generated from these models by
:mod:`broker.node.config_reference` (the ``#:`` comment above a field is its description there).

Example (``nbx node init FR`` writes a working one)::

    bureau = "FR"

    [keys]
    dir = "keys"                        # FR.signing.key, FR.encryption.key and/or FR.hybrid.key

    [trust]
    anchor = "keys/trust-anchor.pub"    # pinned trust-anchor public key
    directory = "directory.json"        # or "topic" to read the nbx.directory topic
    # the node follows the directory while it runs (the topic, or the file re-read when it changes)
    poll_interval_s = 1.0               # how often the file is checked / the topic waited on
    max_staleness_s = 3600              # directory not confirmed this long: stop accepting
    max_directory_age_days = 30         # a directory issued longer ago is refused (frozen)

    [kafka]
    bootstrap = "127.0.0.1:9092"
    security_protocol = "PLAINTEXT"     # or SSL, SASL_SSL
    require_log_append_time = true      # refuse records the broker did not time-stamp
    # ssl_cafile / ssl_certfile / ssl_keyfile, sasl_mechanism = "SCRAM-SHA-512", sasl_username
    # the SASL password is read from the environment variable named by sasl_password_env

    [policy]
    dir = "policies"

    [sink]
    url = "sqlite:///FR.sqlite"         # or jsonl:///path/to/FR.jsonl

    [limits]
    max_in_flight = 64
    max_sign_batch = 64                 # 1: sign each message alone (for older receivers)

    [security]
    min_suite = 1                       # 2: refuse packages not sealed with the post-quantum suite

    [screening]                         # flags for reviewers (broker/screening), never decisions
    offences = "offences.toml"          # default: the list bundled with NBX
    protected = "protected-persons.json"  # keyed hashes only, written 0600
    secret_env = "NBX_SCREENING_SECRET"   # the variable holding the bureau's hashing secret
    refusal_threshold = 0.2             # flag a sender whose recent refusal rate is above this

    [shredding]                         # erasure on the broker's log (docs/safeguards.md)
    topic_retention_days = 7            # retention.ms of inbox, receipts, quarantine, hold topics
    rotate_every_days = 90              # encryption key rotation schedule (nbx keys next-epoch)
    grace_days = 2                      # a retired key is destroyed 3 x (retention + 1 day) + this
    auto = true                         # the daemon destroys expired keys (nbx keys shred does too)
    [retention]                         # the longest kept per type: the policy's [retention]
    warn_days = 30                      # log retention.review-due this many days before
    confirm_within = "72h"              # purged receipts due (no erase_by): then overdue
    [audit]                             # the audit log (docs/safeguards.md, "Audit trail")
    operator = "duty-officer-1"         # who runs the commands; default NBX_OPERATOR, else OS user

Environment variables override the file: ``NBX_BUREAU=DE``, ``NBX_KAFKA__BOOTSTRAP=host:9092``
(nested keys joined by ``__``). Relative paths are relative to the config file's folder.
"""

from __future__ import annotations

import os
import socket
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from broker.errors import ConfigError
from broker.ids import BureauId
from broker.screening import BUNDLED_OFFENCES, DEFAULT_REFUSAL_THRESHOLD
from broker.transport import KafkaSettings

_STRICT = ConfigDict(frozen=True, extra="forbid")
#: ``[retention]`` defaults (shown, commented, in the node.toml ``nbx node init`` writes)
DEFAULT_WARN_DAYS = 30
DEFAULT_CONFIRM_WITHIN_TEXT = "72h"


class KeysConfig(BaseModel):
    """Where the bureau's private keys are."""

    model_config = _STRICT
    #: the folder of the bureau's private keys (``CC.signing.key``, ``CC.encryption.key``
    #: and/or ``CC.hybrid.key``; ``nbx node init`` writes them)
    dir: Path
    #: the environment variable holding the passphrase of encrypted key files
    passphrase_env: str = "NBX_KEY_PASSPHRASE"  # noqa: S105 - the name of a variable, not a secret
    #: after a signing-key rotation (``nbx keys rotate``), sign with the new key only once this
    #: node has seen it in its directory for this long: every other node's followed directory
    #: lists it by then (docs/security/key-rotation.md)
    switch_after_s: float = Field(default=60.0, ge=0, le=86_400)


class TrustConfig(BaseModel):
    """The pinned trust anchor and where the signed directory comes from."""

    model_config = _STRICT
    #: the pinned trust anchor's public key: only a directory it signed is believed
    anchor: Path
    directory: str = Field(description='a signed directory file, or "topic" for nbx.directory')
    #: how often a directory file is checked for a change (and how long one wait on the topic is)
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    #: when the node could not confirm its directory (read the topic to its end, or check the
    #: file) for longer than this, the daemon pauses consuming and the publisher refuses to publish
    max_staleness_s: float = Field(default=3600, gt=0)
    #: a directory whose ``issued_at`` is older than this is refused at start and stops a running
    #: node: the anchor re-issues the directory (``nbx directory reissue``) well within it
    max_directory_age_days: float = Field(default=30, gt=0, le=3650)


class KafkaConfig(BaseModel):
    """Broker connection and security settings."""

    model_config = _STRICT
    #: the brokers to connect to first: ``host:port[,host:port...]``
    bootstrap: str
    #: ``PLAINTEXT`` (a development broker only), ``SSL`` (TLS, optionally with a client
    #: certificate) or ``SASL_SSL`` (TLS with a SCRAM user name and password)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = "PLAINTEXT"
    #: the CA certificate (PEM) the broker's certificate must chain to (TLS)
    ssl_cafile: Path | None = None
    #: this node's client certificate (PEM), when the broker asks for one
    ssl_certfile: Path | None = None
    #: the private key (PEM) of ``ssl_certfile``
    ssl_keyfile: Path | None = None
    #: the SCRAM mechanism with ``SASL_SSL``
    sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    #: the SCRAM user name with ``SASL_SSL``
    sasl_username: str | None = None
    #: the environment variable holding the SCRAM password (never the file)
    sasl_password_env: str = "NBX_SASL_PASSWORD"  # noqa: S105 - the name of a variable
    #: producer idempotence: the broker drops a retried duplicate (off only for a
    #: broker without it)
    enable_idempotence: bool = True
    #: Quarantine records whose timestamp the broker did not set (``timestamp-type``): the
    #: inbox and receipt topics use ``LogAppendTime``, so a record with the producer's time comes
    #: from a topic someone re-created. Turn off only for a broker that cannot stamp records
    #: (the development broker tansu); revocation is then checked at local time as well.
    require_log_append_time: bool = True
    #: Static group membership (KIP-345): a restarted daemon takes its partitions back at once
    #: instead of waiting for a rebalance. The default is ``nbx.<CC>.<hostname>``; a daemon with a
    #: ``replica`` id uses ``nbx.<CC>.<replica>`` instead (how to run several daemons of a bureau).
    group_instance_id: str | None = None
    #: how long the broker waits for a silent daemon before it gives its
    #: partitions to another member of the group
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    #: partitions of the topics NBX creates (more: several daemons of a bureau share
    #: the work)
    topic_partitions: int = Field(default=1, ge=1)
    #: replication factor of the topics NBX creates (3 on a production cluster)
    topic_replication: int = Field(default=1, ge=1)
    #: how long one request to the broker may take before it is retried or fails
    request_timeout_ms: int = Field(default=30_000, ge=1_000)
    #: Pace idle fetches, for a development broker that answers an empty fetch at once instead of
    #: holding it (noida-db; ``nbx demo``, the benchmarks and the tests turn it on there). Leave
    #: off for Apache Kafka: it patches a private method of aiokafka's fetcher.
    pace_empty_fetches: bool = False

    @field_validator("bootstrap")
    @classmethod
    def _hostport(cls, value: str) -> str:
        for part in value.split(","):
            host, _, port = part.strip().rpartition(":")
            if not host or not port.isdigit():
                msg = f"expected host:port[,host:port...], got {value!r}"
                raise ValueError(msg)
        return value


class PolicyConfig(BaseModel):
    """Where the per-country policy files are."""

    model_config = _STRICT
    #: the folder of the per-country policy files (``default.toml``, ``CC.toml``): what
    #: this bureau discloses to each recipient and what it accepts from each sender
    dir: Path


#: the url schemes of a PostgreSQL store
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class SinkConfig(BaseModel):
    """Where delivered notices go."""

    model_config = _STRICT
    #: where delivered notices are stored: ``sqlite:///PATH`` (the store every command
    #: reads), ``postgresql://USER@HOST:PORT/DATABASE`` (a PostgreSQL database, shared by the
    #: replicas of a bureau; docs/storage.md) or ``jsonl:///PATH`` (one JSON line per delivery)
    url: str
    #: the environment variable holding the PostgreSQL password (never in the url or in this
    #: file); unset: libpq's own sources (``PGPASSWORD``, ``~/.pgpass``)
    password_env: str | None = None

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if value.startswith(POSTGRES_SCHEMES):
            from urllib.parse import urlsplit

            if urlsplit(value).password is not None:
                msg = (
                    "sink url must not contain the password: put it in the environment variable "
                    "named by sink.password_env"
                )
                raise ValueError(msg)
            return value
        if not value.startswith(("sqlite:///", "jsonl:///")):
            msg = f"sink url must start with sqlite:///, postgresql:// or jsonl:///, got {value!r}"
            raise ValueError(msg)
        return value

    def is_file(self) -> bool:
        """Whether the store is a file on this machine (SQLite, JSON lines), not a server."""
        return not self.url.startswith(POSTGRES_SCHEMES)


class LimitsConfig(BaseModel):
    """Concurrency and size limits."""

    model_config = _STRICT
    #: most messages the daemon processes at once
    max_in_flight: int = Field(default=64, ge=1, le=10_000)
    #: most concurrent publishes under one signature; 1 signs each message alone, the format
    #: receivers that predate batch signatures can open (use it while they upgrade)
    max_sign_batch: int = Field(default=64, ge=1, le=256)
    #: largest frame (bytes): outgoing frames are padded to size buckets up to it; a larger
    #: incoming record is quarantined as ``too-large``
    max_frame_bytes: int = Field(default=1 << 20, ge=1024)
    #: how long a message may wait for delivery; receivers refuse a claim beyond 90 days
    message_validity_days: int = Field(default=30, ge=1, le=90)


class SecurityConfig(BaseModel):
    """What the node requires of what it receives."""

    model_config = _STRICT
    #: lowest envelope suite accepted (1 X25519, 2 ML-KEM-768+X25519): with 2, packages from
    #: senders that still use suite 1 are quarantined as ``suite-too-weak``; needs a hybrid key
    #: (docs/security/post-quantum.md)
    min_suite: Literal[1, 2] = 1

    @field_validator("min_suite", mode="before")
    @classmethod
    def _suite_from_text(cls, value: object) -> object:
        """``NBX_SECURITY__MIN_SUITE=2`` arrives as text: a literal of ints would refuse it."""
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value


class ScreeningConfig(BaseModel):
    """The screening aids: offence list, protected-persons list and its secret, refusal rate."""

    model_config = _STRICT
    #: the offence list screening matches charges against (default: the list
    #: bundled with NBX)
    offences: Path = BUNDLED_OFFENCES
    #: the protected-persons list: keyed hashes only, written 0600
    protected: Path = Path("protected-persons.json")
    #: the environment variable holding the bureau's secret for those keyed hashes
    secret_env: str = "NBX_SCREENING_SECRET"  # noqa: S105 - the name of a variable, not a secret
    #: flag a sender whose recent refusal rate is above this share (0 to 1)
    refusal_threshold: float = Field(default=DEFAULT_REFUSAL_THRESHOLD, ge=0, le=1)


class AuditConfig(BaseModel):
    """The audit log (docs/safeguards.md, "Audit trail")."""

    model_config = _STRICT
    #: who runs this node's commands (the operator of consultations and of what is sent);
    #: unset: the environment variable NBX_OPERATOR, else the OS user
    operator: str | None = Field(default=None, min_length=1, max_length=128)


class ShreddingConfig(BaseModel):
    """Erasure on the broker's log: how long the bounded topics keep records, how often the
    encryption key rotates, and when an old one is destroyed (docs/safeguards.md, "Erasure on the
    broker: bounded retention and crypto-shredding")."""

    model_config = _STRICT
    #: ``retention.ms`` of the inbox, receipts, quarantine and holding topics NBX creates; change
    #: it on a running cluster with ``kafka-configs --alter`` and here together
    topic_retention_days: float = Field(default=7, gt=0, le=3650)
    #: an encryption key older than this is due for rotation (``nbx keys status``; the daemon
    #: warns ``keys.rotation-overdue``)
    rotate_every_days: float = Field(default=90, gt=0, le=3650)
    #: added to the time every record sealed to a retired key can stay on a topic before that
    #: key is destroyed: senders' directory lag, the broker's retention check, clock skew
    grace_days: float = Field(default=2, ge=0, le=365)
    #: the daemon destroys expired keys itself (else only ``nbx keys shred`` does)
    auto: bool = True


class RetentionConfig(BaseModel):
    """Retention and proven erasure (docs/safeguards.md, "Retention and proven erasure"); the
    longest a notice type is kept is the policy file's ``[retention]`` (five years by default)."""

    model_config = _STRICT
    #: how many days before a stored notice's ``retain_until`` the daemon logs
    #: ``retention.review-due`` (once per run) for it
    warn_days: int = Field(default=DEFAULT_WARN_DAYS, ge=0, le=3650)
    #: how long a recipient has to confirm a purging message without ``erase_by`` (cancel,
    #: refusal, delete) with a signed ``purged`` receipt: ``72h``, ``3d``, ``1w``
    confirm_within: str = DEFAULT_CONFIRM_WITHIN_TEXT

    @field_validator("confirm_within")
    @classmethod
    def _duration(cls, value: str) -> str:
        from broker.sinks.retention import parse_duration

        parse_duration(value)  # ValueError: one line naming the value
        return value

    def confirm_within_delta(self) -> timedelta:
        """:attr:`confirm_within` as a time span."""
        from broker.sinks.retention import parse_duration

        return parse_duration(self.confirm_within)


class MetricsConfig(BaseModel):
    """The Prometheus endpoint (``/metrics``, ``/healthz``, ``/readyz``; docs/operations.md)."""

    model_config = _STRICT
    #: TCP port of the metrics, health and readiness endpoint; 0: no endpoint
    port: int = Field(default=0, ge=0, le=65535)
    #: address it listens on (the loopback by default: put a scraper or proxy beside the node)
    host: str = "127.0.0.1"


class NodeConfig(BaseSettings):
    """A bureau node's configuration (see the module docstring for the file format)."""

    model_config = SettingsConfigDict(
        env_prefix="NBX_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    #: this bureau's two-letter country code (ISO 3166-1 alpha-2, e.g. ``FR``)
    bureau: BureauId
    keys: KeysConfig
    trust: TrustConfig
    kafka: KafkaConfig
    policy: PolicyConfig
    sink: SinkConfig
    limits: LimitsConfig = LimitsConfig()
    security: SecurityConfig = SecurityConfig()
    screening: ScreeningConfig = ScreeningConfig()
    audit: AuditConfig = AuditConfig()
    shredding: ShreddingConfig = ShreddingConfig()
    retention: RetentionConfig = RetentionConfig()
    metrics: MetricsConfig = MetricsConfig()
    #: this daemon's replica id when a bureau runs several daemons sharing its group and store
    #: (``nbx consume --replica N`` or ``NBX_REPLICA`` override it): a short code, unique among
    #: the bureau's running daemons; its static group membership id is ``nbx.<CC>.<replica>``.
    #: Unset: the replica ``default`` (docs/operations.md, "Replicas")
    replica: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
    source: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment variables override the TOML file (passed as init values)."""
        return (env_settings, init_settings)

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        """Read ``path`` (TOML), apply ``NBX_*`` overrides, resolve relative paths."""
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            msg = f"{path}: config file not found"
            raise ConfigError(msg) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            msg = f"{path}: not valid TOML: {exc}"
            raise ConfigError(msg) from None
        try:
            config = cls(**data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            msg = f"{path}: {where}: {first['msg']}"
            raise ConfigError(msg) from None
        return config.resolved(path.parent).model_copy(update={"source": path})

    def resolved(self, base: Path) -> NodeConfig:
        """A copy with every relative path made relative to ``base``."""

        def fix(p: Path | None) -> Path | None:
            return None if p is None or p.is_absolute() else base / p

        def fix_url(url: str) -> str:
            if url.startswith(POSTGRES_SCHEMES):
                return url
            scheme, _, rest = url.partition(":///")
            p = Path(rest)
            return url if p.is_absolute() else f"{scheme}:///{base / p}"

        directory = self.trust.directory
        if directory != "topic" and not Path(directory).is_absolute():
            directory = str(base / directory)
        kafka_paths: dict[str, Any] = {
            k: fix(getattr(self.kafka, k)) or getattr(self.kafka, k)
            for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
        }
        return self.model_copy(
            update={
                "keys": self.keys.model_copy(update={"dir": fix(self.keys.dir) or self.keys.dir}),
                "trust": self.trust.model_copy(
                    update={
                        "anchor": fix(self.trust.anchor) or self.trust.anchor,
                        "directory": directory,
                    }
                ),
                "kafka": self.kafka.model_copy(update=kafka_paths),
                "policy": self.policy.model_copy(
                    update={"dir": fix(self.policy.dir) or self.policy.dir}
                ),
                "sink": self.sink.model_copy(update={"url": fix_url(self.sink.url)}),
                "screening": self.screening.model_copy(
                    update={
                        "offences": fix(self.screening.offences) or self.screening.offences,
                        "protected": fix(self.screening.protected) or self.screening.protected,
                    }
                ),
            }
        )

    def kafka_settings(self) -> KafkaSettings:
        """The transport settings for this node."""
        k = self.kafka
        password = None
        if k.security_protocol == "SASL_SSL":
            password = os.environ.get(k.sasl_password_env)
            if not password or not k.sasl_username or not k.sasl_mechanism:
                msg = (
                    "kafka.security_protocol = SASL_SSL needs sasl_mechanism, sasl_username and "
                    f"the password in ${k.sasl_password_env}"
                )
                raise ConfigError(msg)
        return KafkaSettings(
            bootstrap=k.bootstrap,
            client_id=f"nbx-{self.bureau}",
            enable_idempotence=k.enable_idempotence,
            session_timeout_ms=k.session_timeout_ms,
            request_timeout_ms=k.request_timeout_ms,
            security_protocol=k.security_protocol,
            ssl_cafile=str(k.ssl_cafile) if k.ssl_cafile else None,
            ssl_certfile=str(k.ssl_certfile) if k.ssl_certfile else None,
            ssl_keyfile=str(k.ssl_keyfile) if k.ssl_keyfile else None,
            sasl_mechanism=k.sasl_mechanism,
            sasl_username=k.sasl_username,
            sasl_password=password,
            max_partition_fetch_bytes=self.limits.max_frame_bytes + 4096,
            topic_partitions=k.topic_partitions,
            topic_replication=k.topic_replication,
            group_instance_id=self.group_instance_id(),
            pace_empty_fetches=k.pace_empty_fetches,
            topic_retention_ms=round(self.shredding.topic_retention_days * 86_400_000),
        )

    def group_instance_id(self) -> str:
        """The static group membership id: ``nbx.<CC>.<replica>`` for a daemon with a replica
        id, else ``[kafka] group_instance_id`` or ``nbx.<CC>.<hostname>``."""
        if self.replica is not None:
            return f"nbx.{self.bureau}.{self.replica}"
        return self.kafka.group_instance_id or f"nbx.{self.bureau}.{socket.gethostname()}"

    def sink_path(self) -> Path:
        """The filesystem path of the sink (a file store only: see :meth:`SinkConfig.is_file`)."""
        if not self.sink.is_file():
            msg = f"the sink {self.sink.url} is a database server, not a file"
            raise ConfigError(msg)
        return Path(self.sink.url.partition(":///")[2])

    def serial_path(self) -> Path:
        """The file that holds the highest directory serial this node verified (it refuses any
        lower serial, also after a restart): beside a file store, or beside the configuration
        file for a PostgreSQL store (``CC.directory-serial``; the replicas of a bureau on one
        machine share it)."""
        if not self.sink.is_file():
            base = self.source.parent if self.source is not None else Path.cwd()
            return base / f"{self.bureau}.directory-serial"
        store = self.sink_path()
        return store.with_name(store.name + ".directory-serial")
