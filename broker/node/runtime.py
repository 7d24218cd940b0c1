"""Load what a node needs from its configuration: keys, the verified directory, policies, store.

Every failure is an :class:`~broker.errors.NbxError` with one clear line naming the file.

The directory is *followed* while the node runs (docs/security/directory.md):

* :class:`TopicDirectory` keeps one reader of ``nbx.directory`` open and installs every newer
  verified serial as it arrives; :class:`FileDirectory` checks the file's mtime, size and inode
  every ``trust.poll_interval_s`` and re-reads it when they change. The daemon's receive path
  asks the lookup synchronously (``signing_key``); a newer serial replaces the current one in
  one assignment, so a message is checked against one whole directory, never a mixture.
* A forged record or file, or a lower serial, is refused and logged (``directory.skipped``,
  ``directory.refused``: serials, offsets, no personal data); the node keeps what it has.
* The highest verified serial is written (atomically, fsync, mode 0600) to a file beside the store
  (:meth:`~broker.node.config.NodeConfig.serial_path`); after a restart a lower serial is refused.
* Anchor rotation (docs/security/anchor-rotation.md): a directory signed by a successor the pinned
  anchor announced (its ``anchor_chain`` leads there) is installed like any newer serial, and the
  node pins the successor in the same step (``directory.anchor-rotated``); the links followed are
  stored in the serial file, and at start the configured ``trust.anchor`` is walked along them
  (each verified again) to the newest anchor. A directory naming a successor is logged
  ``directory.anchor-announced``.
* :meth:`FollowedDirectory.refusal` closes the gate when the directory was not confirmed (the
  topic read to its end, or the file checked) for ``trust.max_staleness_s``, or was issued longer
  than ``trust.max_directory_age_days`` ago: the daemon pauses consuming (nothing is committed,
  nothing lost) and the publisher refuses to publish, until it is confirmed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from broker.errors import ConfigError, KeyDirectoryError, PolicyError, TransportError
from broker.keys import BureauKeys, BureauPublicKeys, Directory, KeyLookup
from broker.keys.anchor import AnchorLink, UnannouncedAnchorError, kid_of, parse_links, walk
from broker.keys.directory_topic import DirectoryReader, Found, no_directory
from broker.keys.rules import NetworkRules
from broker.logging import get_logger
from broker.transport import DIRECTORY_TOPIC
from broker.vocab import DirectoryState
from broker.wire.suites import SUITE_MLKEM768_X25519, RecipientPrivateKey, RecipientPublicKey

if TYPE_CHECKING:
    from broker.keys.directory import KeyRecord
    from broker.node.config import NodeConfig, TrustConfig
    from broker.policy import PolicySet
    from broker.sinks import Sink
    from broker.sinks.retention import RetentionLimit
    from broker.transport import KafkaSettings


@dataclass(frozen=True)
class Freshness:
    """How a followed directory is kept fresh, and when it is too stale or too old to trust."""

    poll_interval_s: float = 1.0
    max_staleness_s: float = 3600.0
    max_age: timedelta = timedelta(days=30)

    @classmethod
    def from_config(cls, trust: TrustConfig) -> Freshness:
        """The ``[trust]`` settings."""
        return cls(
            poll_interval_s=trust.poll_interval_s,
            max_staleness_s=trust.max_staleness_s,
            max_age=timedelta(days=trust.max_directory_age_days),
        )


class SerialFile:
    """The highest directory serial a node verified, and the anchor links it followed, in a small
    file beside its store: ``{"serial": N, "anchor_chain": [...]}`` (``anchor_chain`` absent
    until the anchor was rotated; files without it are read as an empty chain).

    Written atomically (a temporary file, fsync, rename, fsync of the folder) with mode 0600; the
    serial only ever grows. Works for every sink, since it is not inside one.
    """

    def __init__(self, path: Path) -> None:
        """Remember the path (nothing is read yet)."""
        self.path = path

    def _unreadable(self) -> KeyDirectoryError:
        return KeyDirectoryError(
            f"{self.path}: unreadable directory serial file (remove it only if you trust it)"
        )

    def read_state(self) -> tuple[int, tuple[AnchorLink, ...]]:
        """The stored serial (0 if the file does not exist yet) and anchor links."""
        try:
            data = json.loads(self.path.read_bytes())
            serial = data["serial"]
            if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
                raise TypeError
        except FileNotFoundError:
            return 0, ()
        except (OSError, ValueError, TypeError, KeyError):
            raise self._unreadable() from None
        chain = parse_links(data.get("anchor_chain", []), str(self.path))
        return serial, chain

    def read(self) -> int:
        """The stored serial (0 if the file does not exist yet)."""
        return self.read_state()[0]

    def write(self, serial: int, chain: tuple[AnchorLink, ...] | None = None) -> None:
        """Store ``serial`` if it is higher than the stored one (with ``chain``, the anchor links
        followed, if given; else the stored links are kept)."""
        stored, links = self.read_state()
        if serial <= stored:
            return
        document: dict[str, object] = {"serial": serial}
        links = links if chain is None else chain
        if links:
            document["anchor_chain"] = [link.model_dump(mode="json") for link in links]
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{self.path.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(document).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            tmp.replace(self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dirfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)


class FollowedDirectory:
    """A :class:`KeyLookup` over the newest verified directory, which a background task keeps
    fresh while at least one owner (a daemon, a publisher) has called :meth:`start`."""

    #: where the directory comes from, for messages (a file path or ``nbx.directory``)
    source: str = "directory"

    def __init__(
        self,
        anchor: ed25519.Ed25519PublicKey,
        freshness: Freshness | None = None,
        serial_file: SerialFile | None = None,
    ) -> None:
        """Read the highest serial verified before (the floor) and pin the newest anchor the
        stored anchor links lead to from ``anchor`` (each verified again); nothing else is loaded
        yet."""
        self.freshness = freshness or Freshness()
        self.serial_file = serial_file
        floor, chain = serial_file.read_state() if serial_file is not None else (0, ())
        #: the lowest serial this node may accept (the highest it ever verified)
        self.floor = floor
        where = str(serial_file.path) if serial_file is not None else "directory"
        #: the anchor links this node followed (stored beside the store), oldest first
        self.chain: tuple[AnchorLink, ...] = chain
        #: the anchor now pinned: the configured one, or the successor the chain leads to
        self.anchor: ed25519.Ed25519PublicKey = walk(anchor, chain, where).anchor
        self.current: Directory | None = None
        self._confirmed: float | None = None  # time.monotonic() of the last confirmation
        self._owners: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._reported: DirectoryState | None = None
        self._log = get_logger()

    # --- the lookup (synchronous: the receive path asks it for every record) -----------------

    def _dir(self) -> Directory:
        current = self.current
        if current is None:
            msg = f"the directory has not been read from {self.source} yet"
            raise KeyDirectoryError(msg)
        return current

    @property
    def serial(self) -> int:
        """The current serial (0 before the first directory is loaded)."""
        current = self.current
        return 0 if current is None else current.serial

    def signing_key(self, bureau: str, kid: str, at: datetime) -> ed25519.Ed25519PublicKey:
        """Delegate to the current directory."""
        return self._dir().signing_key(bureau, kid, at)

    def encryption_key(
        self, bureau: str, at: datetime | None = None
    ) -> tuple[str, x25519.X25519PublicKey]:
        """Delegate to the current directory."""
        return self._dir().encryption_key(bureau, at)

    def recipient_key(
        self, bureau: str, at: datetime | None = None
    ) -> tuple[str, RecipientPublicKey]:
        """Delegate to the current directory."""
        return self._dir().recipient_key(bureau, at)

    def encryption_record(self, bureau: str, at: datetime | None = None) -> KeyRecord:
        """Delegate to the current directory."""
        return self._dir().encryption_record(bureau, at)

    def public_keys(self, bureau: str, at: datetime | None = None) -> BureauPublicKeys:
        """Delegate to the current directory."""
        return self._dir().public_keys(bureau, at)

    def bureau_ids(self) -> list[str]:
        """Every bureau listed."""
        return self._dir().bureau_ids()

    def roles(self, bureau: str) -> frozenset[str]:
        """Delegate to the current directory."""
        return self._dir().roles(bureau)

    def rules(self) -> NetworkRules:
        """Delegate to the current directory (a new serial brings its rules at once)."""
        return self._dir().rules()

    # --- taking a newer directory -------------------------------------------------------------

    def too_old(self, directory: Directory) -> bool:
        """Whether ``directory`` was issued longer ago than the maximum age."""
        return datetime.now(UTC) - directory.body.issued_at > self.freshness.max_age

    def _age_error(self, directory: Directory) -> KeyDirectoryError:
        days = self.freshness.max_age / timedelta(days=1)
        return KeyDirectoryError(
            f"{self.source}: directory serial {directory.serial} was issued "
            f"{directory.body.issued_at.isoformat()}, more than trust.max_directory_age_days = "
            f"{days:g} ago; have the trust anchor re-issue it (nbx directory reissue)"
        )

    def _first(self, directory: Directory) -> None:
        """Install the directory a node starts with: refused if older than the floor (checked by
        the caller) or too old."""
        if self.too_old(directory):
            raise self._age_error(directory)
        self.install(directory)

    def install(self, directory: Directory) -> bool:
        """Make ``directory`` (verified by the caller) current if its serial is higher than the
        current one; record the serial beside the store first. True if it was installed."""
        previous = self.current
        if previous is not None and directory.serial <= previous.serial:
            return False
        if directory.serial < self.floor:  # pragma: no cover - callers check against the floor
            return False
        signer = directory.anchor
        rotated = signer is not None and kid_of(signer) != kid_of(self.anchor)
        if rotated and not self._announced(previous, directory):
            return False
        chain = self.chain + directory.links if rotated else self.chain
        if self.serial_file is not None:
            self.serial_file.write(directory.serial, chain)
        self.floor = max(self.floor, directory.serial)
        self.current = directory  # one assignment: readers see the old or the new, never a mix
        if rotated and signer is not None:  # pin the successor in the same step
            old_kid, self.anchor, self.chain = kid_of(self.anchor), signer, chain
            self._log.info(
                "directory.anchor-rotated",
                topic=self.source,
                serial=directory.serial,
                anchor_kid=kid_of(signer),
                previous_anchor_kid=old_kid,
            )
        announced = directory.body.successor
        if announced is not None and (previous is None or previous.body.successor != announced):
            self._log.info(
                "directory.anchor-announced",
                topic=self.source,
                serial=directory.serial,
                anchor_kid=announced.to_kid,
                previous_anchor_kid=announced.from_kid,
            )
        if previous is None:  # the directory the node starts with
            self._log.debug("directory.loaded", topic=self.source, serial=directory.serial)
        else:
            self._log.info(
                "directory.updated",
                topic=self.source,
                serial=directory.serial,
                current_serial=previous.serial,
            )
        return True

    def _announced(self, previous: Directory | None, directory: Directory) -> bool:
        """Whether the first step of ``directory``'s chain is the successor the current directory
        announces, when it announces one (a later announcement replaces an earlier one: a node
        that saw it does not follow the link to the replaced successor). Logged when not."""
        named = previous.body.successor if previous is not None else None
        first = directory.links[0] if directory.links else None
        if named is None or first is None or first.to_kid == named.to_kid:
            return True
        self._log.warning(
            "directory.skipped",
            topic=self.source,
            serial=directory.serial,
            current_serial=self.serial,
            anchor_kid=first.to_kid,
            reason=DirectoryState.UNANNOUNCED,
        )
        return False

    def confirm(self, at: float | None = None) -> None:
        """The directory was confirmed (at ``at``, ``time.monotonic()``; default now)."""
        self._confirmed = time.monotonic() if at is None else at

    def confirm_wall(self, at: float) -> None:
        """The directory was confirmed at wall-clock time ``at`` (a broker's answer)."""
        self.confirm(time.monotonic() - max(0.0, time.time() - at))

    # --- the gate -----------------------------------------------------------------------------

    def refusal(self) -> DirectoryState | None:
        """``None`` while the directory may be trusted; ``"stale"`` when it was not confirmed for
        ``max_staleness_s``, ``"too-old"`` when it was issued longer than ``max_age`` ago."""
        current, confirmed = self.current, self._confirmed
        if current is None or confirmed is None:
            return DirectoryState.STALE
        if time.monotonic() - confirmed > self.freshness.max_staleness_s:
            return DirectoryState.STALE
        if self.too_old(current):
            return DirectoryState.TOO_OLD
        return None

    def refusal_message(self, reason: DirectoryState) -> str:
        """One line saying why the node does not accept, for the publisher's error."""
        if reason == DirectoryState.TOO_OLD and self.current is not None:
            return str(self._age_error(self.current))
        since = (
            "never" if self._confirmed is None else f"{time.monotonic() - self._confirmed:.0f} s"
        )
        return (
            f"{self.source}: the directory could not be confirmed for longer than "
            f"trust.max_staleness_s = {self.freshness.max_staleness_s:g} s (last: {since} ago); "
            "refusing until it is confirmed again"
        ).replace("(last: never ago)", "(never confirmed)")

    def _report(self) -> None:
        """Log when the gate closes (an error) or opens again."""
        state = self.refusal()
        if state == self._reported:
            return
        if state is None:
            self._log.info("directory.confirmed", serial=self.serial, topic=self.source)
        else:
            elapsed = None if self._confirmed is None else time.monotonic() - self._confirmed
            self._log.error(
                f"directory.{state}",
                serial=self.serial,
                topic=self.source,
                reason=state,
                elapsed_ms=None if elapsed is None else round(elapsed * 1000),
            )
        self._reported = state

    # --- following ----------------------------------------------------------------------------

    async def start(self, owner: object) -> None:
        """Load the directory if needed and follow it until every owner called :meth:`stop`
        (calling it again for the same owner does nothing)."""
        if id(owner) in self._owners:
            return
        if self._task is None:
            await self._begin()
            self._task = asyncio.create_task(self._follow(), name=f"nbx-directory-{self.source}")
        self._owners.add(id(owner))

    async def stop(self, owner: object) -> None:
        """``owner`` no longer needs the directory followed; the last one stops the task."""
        self._owners.discard(id(owner))
        if self._owners or self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._end()

    async def _follow(self) -> None:
        while True:
            try:
                await self._step()
            except (KeyDirectoryError, TransportError, OSError) as exc:
                self._log.warning(
                    "directory.unreachable", topic=self.source, error_type=type(exc).__name__
                )
                await asyncio.sleep(self.freshness.poll_interval_s)
            except Exception as exc:  # keep following; the staleness gate covers a stuck source
                self._log.error(
                    "directory.follow-failed", topic=self.source, error_type=type(exc).__name__
                )
                await asyncio.sleep(self.freshness.poll_interval_s)
            self._report()

    async def _begin(self) -> None:
        """Load the first directory if it is not loaded (the subclass's source)."""

    async def _step(self) -> None:
        """One round of following (the subclass's source)."""
        await asyncio.sleep(self.freshness.poll_interval_s)

    async def _end(self) -> None:
        """Release what following held."""


class FileDirectory(FollowedDirectory):
    """A directory file, verified when the node loads it and re-read whenever its modification
    time, size or inode change (checked every ``poll_interval_s``)."""

    def __init__(
        self,
        path: Path,
        anchor: ed25519.Ed25519PublicKey,
        freshness: Freshness | None = None,
        serial_file: SerialFile | None = None,
    ) -> None:
        """Read and verify ``path`` (refused if older than the stored serial, or too old)."""
        super().__init__(anchor, freshness, serial_file)
        self.path = path
        self.source = str(path)
        self._seen: tuple[int, int, int] | None = None
        self._bad: tuple[int, int, int] | None = None
        signature = self._stat()
        self._first(Directory.load(path, self.anchor, min_serial=self.floor))
        self._seen = signature
        self.confirm()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def check(self) -> None:
        """Check the file once: re-read it if it changed, confirm the directory if it is (still)
        the current serial or a newer one; a missing, forged or older file confirms nothing."""
        signature = self._stat()
        if signature is None:
            if self._bad != (0, 0, 0):
                self._log.warning(
                    "directory.unreachable", topic=self.source, reason=DirectoryState.MISSING
                )
                self._bad = (0, 0, 0)
            return
        if signature == self._seen:
            self.confirm()
            return
        if signature == self._bad:
            return
        try:
            found = Directory.load(self.path, self.anchor)
        except KeyDirectoryError as exc:
            unannounced = isinstance(exc, UnannouncedAnchorError)
            self._log.warning(
                "directory.skipped",
                topic=self.source,
                reason=DirectoryState.UNANNOUNCED if unannounced else DirectoryState.UNVERIFIED,
            )
            self._bad = signature
            return
        if found.serial < self.serial:
            self._log.warning(
                "directory.refused",
                topic=self.source,
                serial=found.serial,
                current_serial=self.serial,
                reason=DirectoryState.ROLLBACK,
            )
            self._bad = signature
            return
        if not self.install(found) and found.serial > self.serial:  # a replaced announcement
            self._bad = signature
            return
        self._seen, self._bad = signature, None
        self.confirm()

    async def _step(self) -> None:
        await asyncio.sleep(self.freshness.poll_interval_s)
        self.check()


class TopicDirectory(FollowedDirectory):
    """The directory on ``nbx.directory``: read to its end on start, then followed with one
    reader kept open (a new serial is installed as soon as the broker delivers it)."""

    source = DIRECTORY_TOPIC

    def __init__(
        self,
        settings: KafkaSettings,
        anchor: ed25519.Ed25519PublicKey,
        freshness: Freshness | None = None,
        serial_file: SerialFile | None = None,
    ) -> None:
        """Remember where to read the directory from (nothing is read yet)."""
        super().__init__(anchor, freshness, serial_file)
        self.settings = settings
        self._reader: DirectoryReader | None = None

    async def _open(self) -> tuple[DirectoryReader, Found, float]:
        reader = DirectoryReader(self.settings)
        await reader.open()
        try:
            found, confirmed = await reader.read_to_end(
                self.anchor, max(self.floor, self.serial), self.settings.request_timeout_ms / 1000
            )
        except BaseException:
            await reader.close()
            raise
        return reader, found, confirmed

    async def fetch(self) -> None:
        """Read the topic to its end once and install the newest verified serial (never a lower
        one than this node verified before)."""
        reader, found, confirmed = await self._open()
        await reader.close()
        if found.best is None:
            raise no_directory(self.settings, found, max(self.floor, self.serial))
        if self.current is None:
            self._first(found.best)
        else:
            self.install(found.best)
        self.confirm_wall(confirmed)

    async def _begin(self) -> None:
        reader, found, confirmed = await self._open()
        try:
            if found.best is None:
                if self.current is None:
                    raise no_directory(self.settings, found, self.floor)
            elif self.current is None:
                self._first(found.best)
            else:
                self.install(found.best)
        except BaseException:
            await reader.close()
            raise
        self.confirm_wall(confirmed)
        self._reader = reader

    async def _step(self) -> None:
        if self._reader is None:  # the last read failed: read the topic again to its end
            reader, caught_up, answered = await self._open()
            self._reader = reader
            if caught_up.best is not None:
                self.install(caught_up.best)
            self.confirm_wall(answered)
            return
        try:
            records, confirmed = await self._reader.poll(
                timeout_ms=round(self.freshness.poll_interval_s * 1000)
            )
        except TransportError:
            await self._end()
            raise
        found = Found()
        for partition, offset, value in records:
            found.consider(
                value, self.anchor, self.serial, partition=partition, offset=offset, quiet=False
            )
        if found.best is not None:
            self.install(found.best)
        if confirmed is not None:
            self.confirm_wall(confirmed)

    async def _end(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await reader.close()


def check_accepting(directory: KeyLookup) -> None:
    """Raise :class:`KeyDirectoryError` (one line) if the node must not accept now."""
    reason = directory.refusal()
    if reason is not None:
        raise KeyDirectoryError(directory.refusal_message(reason))


@dataclass
class Node:
    """A bureau's loaded keys, directory, policies, and how to open its store."""

    config: NodeConfig
    keys: BureauKeys
    directory: FollowedDirectory
    policies: PolicySet
    decryption_keys: dict[str, RecipientPrivateKey] = field(default_factory=dict)

    def open_store(self, *, durable: bool = True) -> Sink:
        """Open the configured sink (``durable``: fsync every commit) with this bureau's
        retention limits (:meth:`retention_limit`)."""
        from broker.sinks import open_sink

        return open_sink(
            self.config.sink.url,
            password_env=self.config.sink.password_env,
            durable=durable,
            retention=self.retention_limit(),
        )

    def retention_limit(self) -> RetentionLimit:
        """The longest this bureau keeps a notice of a type: its own policy file's
        ``[retention]`` (``CC.toml``, else ``default.toml``), five years where it says nothing."""
        from broker.sinks.retention import DEFAULT_MAX_RETENTION

        policies, bureau = self.policies, self.config.bureau

        def limit(notice_type: str, sender: str) -> timedelta:
            del sender
            try:
                own = policies.for_recipient(bureau)
            except PolicyError:
                return DEFAULT_MAX_RETENTION
            return own.max_retention(notice_type) or DEFAULT_MAX_RETENTION

        return limit


def load_node(config: NodeConfig) -> Node:
    """Load keys, the pinned anchor, the directory and the policies named by ``config``.

    A directory file is read and verified here (refused if its serial is lower than the one
    recorded beside the store, or if it is too old); the topic is read when the node starts.
    """
    from broker.keys.epochs import load_keys
    from broker.keys.files import load_anchor_public_key
    from broker.policy import load_policies

    secret = os.environ.get(config.keys.passphrase_env)
    passphrase = secret.encode() if secret else None
    # the current keys and the retired epochs' keys not destroyed yet (broker.keys.epochs)
    keys = load_keys(config.keys.dir, config.bureau, passphrase)
    if config.security.min_suite >= SUITE_MLKEM768_X25519 and keys.hybrid_key is None:
        msg = (
            f"security.min_suite = {config.security.min_suite} needs a hybrid encryption key "
            f"({config.bureau}.hybrid.key in {config.keys.dir}; nbx keys new-bureau --pq)"
        )
        raise ConfigError(msg)
    anchor = load_anchor_public_key(config.trust.anchor)
    freshness = Freshness.from_config(config.trust)
    serials = SerialFile(config.serial_path())
    directory: FollowedDirectory
    if config.trust.directory == "topic":
        directory = TopicDirectory(config.kafka_settings(), anchor, freshness, serials)
    else:
        directory = FileDirectory(Path(config.trust.directory), anchor, freshness, serials)
    policies = load_policies(config.policy.dir)
    # every private encryption key held (X25519 and hybrid): both suites open during a migration
    return Node(config, keys, directory, policies, keys.decryption_keys())
