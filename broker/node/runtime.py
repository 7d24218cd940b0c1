"""Load what a node needs from its configuration: keys, the verified directory, policies, store.

Every failure is an :class:`~broker.errors.NbxError` with one clear line naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from broker.envelope.suites import SUITE_MLKEM768_X25519, RecipientPrivateKey, RecipientPublicKey
from broker.errors import ConfigError, KeyDirectoryError
from broker.keys import BureauKeys, Directory, KeyLookup

if TYPE_CHECKING:
    from broker.node.config import NodeConfig
    from broker.policy import PolicySet
    from broker.sinks import Sink


class TopicDirectory:
    """A :class:`KeyLookup` whose signed directory is read from ``nbx.directory`` on start."""

    def __init__(self, config: NodeConfig, anchor: ed25519.Ed25519PublicKey) -> None:
        """Remember where to fetch the directory from (nothing is read yet)."""
        self.config = config
        self.anchor = anchor
        self.current: Directory | None = None

    async def fetch(self) -> None:
        """Fetch and verify the newest directory on the topic (never an older serial)."""
        from broker.keys.directory_topic import fetch_directory

        min_serial = self.current.serial if self.current is not None else 0
        self.current = await fetch_directory(
            self.config.kafka_settings().bootstrap, self.anchor, min_serial
        )

    def _dir(self) -> Directory:
        if self.current is None:
            msg = "the directory has not been read from the nbx.directory topic yet"
            raise KeyDirectoryError(msg)
        return self.current

    def signing_key(self, bureau: str, kid: str, at: datetime) -> ed25519.Ed25519PublicKey:
        """Delegate to the loaded directory."""
        return self._dir().signing_key(bureau, kid, at)

    def encryption_key(self, bureau: str) -> tuple[str, x25519.X25519PublicKey]:
        """Delegate to the loaded directory."""
        kid, key = self._dir().encryption_key(bureau)
        if not isinstance(key, x25519.X25519PublicKey):  # pragma: no cover - hybrid suite
            msg = f"{bureau}: encryption key is not X25519"
            raise KeyDirectoryError(msg)
        return kid, key

    def recipient_key(self, bureau: str) -> tuple[str, RecipientPublicKey]:
        """Delegate to the loaded directory (the newest usable key of any suite)."""
        return self._dir().recipient_key(bureau)

    def bureau_ids(self) -> list[str]:
        """Every bureau listed."""
        return self._dir().bureau_ids()


@dataclass
class Node:
    """A bureau's loaded keys, directory, policies, and how to open its store."""

    config: NodeConfig
    keys: BureauKeys
    directory: KeyLookup
    policies: PolicySet
    decryption_keys: dict[str, RecipientPrivateKey] = field(default_factory=dict)

    def open_store(self, *, durable: bool = True) -> Sink:
        """Open the configured sink (``durable``: fsync every commit)."""
        from broker.sinks import open_sink

        return open_sink(self.config.sink.url, durable=durable)

    async def ready(self) -> None:
        """Finish loading what needs the broker (the directory topic)."""
        if isinstance(self.directory, TopicDirectory):
            await self.directory.fetch()


def load_node(config: NodeConfig) -> Node:
    """Load keys, the pinned anchor, the directory and the policies named by ``config``."""
    from broker.keys.files import load_anchor_public_key, load_bureau_keys
    from broker.policy import load_policies

    secret = os.environ.get(config.keys.passphrase_env)
    passphrase = secret.encode() if secret else None
    keys = load_bureau_keys(config.keys.dir, config.bureau, passphrase)
    if config.security.min_suite >= SUITE_MLKEM768_X25519 and keys.hybrid_key is None:
        msg = (
            f"security.min_suite = {config.security.min_suite} needs a hybrid encryption key "
            f"({config.bureau}.hybrid.key in {config.keys.dir}; nbx keys new-bureau --pq)"
        )
        raise ConfigError(msg)
    anchor = load_anchor_public_key(config.trust.anchor)
    directory: KeyLookup
    if config.trust.directory == "topic":
        directory = TopicDirectory(config, anchor)
    else:
        directory = Directory.load(Path(config.trust.directory), anchor)
    policies = load_policies(config.policy.dir)
    # every private encryption key held (X25519 and hybrid): both suites open during a migration
    return Node(config, keys, directory, policies, keys.decryption_keys())
