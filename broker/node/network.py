"""A network of bureaus in one folder, ready to run: ``nbx network init`` and what
``nbx network up`` reads.

:func:`init_network` checks its input (at least two distinct bureau ids, an existing policy
folder, an empty target folder) before it writes anything, then provisions the network with
:func:`broker.node.provision.provision` (one anchor, one signed directory, one ``node.toml`` per
bureau reading that directory, its own store and the shared policy folder), copies the example
notices and writes ``network.toml``, the manifest ``nbx network up`` starts from::

    DIR/network.toml      bureaus, the broker kind and its bootstrap address
    DIR/anchor/ DIR/directory.json DIR/policies/ DIR/<CC>/   as broker.node.provision writes them
    DIR/notices/*.json    the example notices, to publish
    DIR/broker/           the development broker's data (written by ``nbx network up``)

``nbx network init --store postgresql`` points every bureau's ``[sink]`` at a database of its own
(``nbx_<cc>``) on a PostgreSQL server ``nbx network up`` runs (:mod:`broker.devpg`) at the address
in the manifest, the password in :data:`PG_PASSWORD_ENV`, read from ``DIR/postgres.password``
(0600, written at init)::

    DIR/postgres/ DIR/postgres.log   the server's cluster and log (written by ``nbx network up``)

``nbx network up`` publishes ``DIR/directory.json`` to ``nbx.directory`` once its broker runs
(:func:`publish_network_directory`): the network's own nodes follow the file, a bureau that joins
(``nbx node join``) reads the topic. Later serials are published by the anchor operator with
``nbx directory publish`` (:func:`publish_command`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from broker.errors import NbxError
from broker.ids import bureau_id
from broker.keys.directory import Directory
from broker.keys.directory_topic import publish_directory
from broker.keys.files import load_anchor_public_key
from broker.node.provision import provision
from broker.transport import KafkaSettings

#: the manifest of a network folder
MANIFEST = "network.toml"
#: the broker kinds a network can be written for: the two development brokers ``nbx network up``
#: runs, or an Apache Kafka cluster the operator runs (``up`` then refuses: start the daemons)
BROKER_KINDS: tuple[str, ...] = ("noida", "tansu", "kafka")
#: where ``nbx network up`` runs its development broker when ``--bootstrap`` is not given
DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
#: the bureau that issues the example notices (``IT-2025-0001``, the red notice)
EXAMPLE_ISSUER = "IT"
LOOPBACK: frozenset[str] = frozenset({"127.0.0.1", "localhost"})
#: where a network's stores can be: a SQLite file per bureau, or a PostgreSQL database per bureau
#: on the server ``nbx network up`` runs
STORES: tuple[str, ...] = ("sqlite", "postgresql")
#: where ``nbx network up`` runs PostgreSQL for a network with ``--store postgresql``
DEFAULT_POSTGRES = "127.0.0.1:15432"
#: the environment variable holding the PostgreSQL password (``[sink] password_env`` of the nodes
#: of ``nbx network init --store postgresql``, ``nbx demo --store postgresql`` and what ``nbx
#: dev-postgres`` prints)
PG_PASSWORD_ENV = "NBX_PG_PASSWORD"  # noqa: S105 - the name of a variable, not a password
#: the database of bureau ``cc`` on a development PostgreSQL server: ``nbx_<cc>``
DATABASE_PREFIX = "nbx_"


def database_of(cc: str) -> str:
    """The database of bureau ``cc`` on a development PostgreSQL server (``nbx_fr``)."""
    return f"{DATABASE_PREFIX}{cc.lower()}"


def point_sink(config: Path, cc: str, url: str, password_env: str = PG_PASSWORD_ENV) -> None:
    """Point the ``[sink]`` of bureau ``cc``'s provisioned ``config`` (a SQLite file) at ``url``
    with the password in the environment variable ``password_env``."""
    text = config.read_text()
    provisioned = f'url = "sqlite:///{cc}.sqlite"\n'
    if provisioned not in text:
        msg = f"{config}: no [sink] url {provisioned.strip()} to replace"
        raise NetworkError(msg)
    config.write_text(
        text.replace(provisioned, f'url = "{url}"\npassword_env = "{password_env}"\n')
    )


class NetworkError(NbxError):
    """Bad input to ``nbx network init`` or an unusable network folder."""


@dataclass(frozen=True)
class Network:
    """A network folder as its manifest describes it."""

    folder: Path
    bureaus: tuple[str, ...]
    broker: str
    bootstrap: str
    #: ``host:port`` of the PostgreSQL server ``nbx network up`` runs; None: SQLite stores
    postgres: str | None = None

    def config(self, cc: str) -> Path:
        """The node file of bureau ``cc``."""
        return self.folder / cc / "node.toml"

    @property
    def password_file(self) -> Path:
        """The PostgreSQL password of a network with ``--store postgresql`` (0600)."""
        return self.folder / "postgres.password"

    @property
    def postgres_port(self) -> int:
        """The port of the network's PostgreSQL server."""
        if self.postgres is None:
            msg = f"{self.folder / MANIFEST}: the network's stores are SQLite files"
            raise NetworkError(msg)
        return int(self.postgres.rpartition(":")[2])

    @property
    def host_port(self) -> tuple[str, int]:
        """The bootstrap address split into host and port."""
        host, _, port = self.bootstrap.rpartition(":")
        return host, int(port)

    @classmethod
    def load(cls, folder: Path) -> Network:
        """Read ``folder/network.toml``; a folder without one is refused with its path."""
        path = folder / MANIFEST
        try:
            data = tomllib.loads(path.read_text())
            bureaus = tuple(str(b) for b in data["bureaus"])
            broker, bootstrap = str(data["broker"]), str(data["bootstrap"])
            postgres = str(data["postgres"]) if "postgres" in data else None
        except FileNotFoundError:
            msg = f"{path}: not found (create the network with `nbx network init {folder}`)"
            raise NetworkError(msg) from None
        except (tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
            msg = f"{path}: not a network manifest ({exc})"
            raise NetworkError(msg) from None
        if broker not in BROKER_KINDS:
            msg = f"{path}: unknown broker {broker!r} (one of: {', '.join(BROKER_KINDS)})"
            raise NetworkError(msg)
        return cls(folder, bureaus, broker, bootstrap, postgres)


def parse_bureaus(value: str) -> list[str]:
    """``"IT,fr, DE"`` -> ``["IT", "FR", "DE"]``: bureau ids, at least two, none twice."""
    ids = [p.strip().upper() for p in value.split(",") if p.strip()]
    for cc in ids:
        try:
            bureau_id(cc)
        except ValueError as exc:
            raise NetworkError(f"--bureaus: {exc}") from None
    repeated = sorted({b for b in ids if ids.count(b) > 1})
    if repeated:
        msg = f"--bureaus: {', '.join(repeated)} given twice"
        raise NetworkError(msg)
    if len(ids) < 2:
        msg = f"--bureaus: a network needs at least two bureaus, got {len(ids)} ({value!r})"
        raise NetworkError(msg)
    return ids


def broker_kind(bootstrap: str, impl: str | None) -> str:
    """The broker a network is written for: ``impl`` if given, else a development broker
    (noida) on a loopback address and Apache Kafka anywhere else."""
    host, sep, port = bootstrap.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        msg = f"--bootstrap: expected HOST:PORT such as 127.0.0.1:19092, got {bootstrap!r}"
        raise NetworkError(msg)
    if impl is not None:
        return impl
    return "noida" if host in LOOPBACK else "kafka"


def init_network(
    folder: Path,
    bureaus: Sequence[str],
    *,
    policies: Path,
    notices: Path,
    bootstrap: str,
    broker: str,
    stamps_log_append_time: bool,
    paces_empty_fetches: bool,
    idempotent_producer: bool,
    postgres: str | None = None,
) -> Network:
    """Write a network of ``bureaus`` into ``folder`` (which must not exist or be empty).

    ``postgres`` (``127.0.0.1:PORT``): each bureau's store is the database ``nbx_<cc>`` on the
    PostgreSQL server ``nbx network up`` runs there, the password in ``DIR/postgres.password``.

    The three flags describe the broker (``broker.devbroker`` knows them for the development
    brokers; Apache Kafka has all three). Refused before anything is written: a non-empty
    ``folder``, a ``policies`` folder that is missing or holds no ``*.toml``.
    """
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        msg = f"{folder}: already exists and is not empty"
        raise NetworkError(msg)
    if not policies.is_dir():
        msg = f"{policies}: policy folder not found"
        raise NetworkError(msg)
    if not any(policies.glob("*.toml")):
        msg = f"{policies}: no policy file (*.toml) in the folder"
        raise NetworkError(msg)
    if postgres is not None:
        host, _, port = postgres.rpartition(":")
        if host not in LOOPBACK or not port.isdigit() or not 0 < int(port) < 65536:
            msg = f"--postgres: expected 127.0.0.1:PORT (nbx network up runs it), got {postgres!r}"
            raise NetworkError(msg)
    configs = provision(
        folder,
        list(bureaus),
        bootstrap=bootstrap,
        policies=policies,
        require_log_append_time=stamps_log_append_time,
        pace_empty_fetches=paces_empty_fetches,
        enable_idempotence=idempotent_producer,
    )
    shutil.copytree(notices, folder / "notices")
    listed = ", ".join(f'"{b}"' for b in bureaus)
    manifest = (
        "# Written by `nbx network init`; `nbx network up` reads it.\n"
        f"bureaus = [{listed}]\n"
        f'broker = "{broker}"  # noida or tansu: `nbx network up` runs it; kafka: your own\n'
        f'bootstrap = "{bootstrap}"\n'
    )
    net = Network(folder, tuple(bureaus), broker, bootstrap, postgres)
    if postgres is not None:
        manifest += f'postgres = "{postgres}"  # the PostgreSQL server `nbx network up` runs\n'
        for cc, config in configs.items():
            point_sink(config, cc, f"postgresql://nbx@{postgres}/{database_of(cc)}")
        fd = os.open(net.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(18) + "\n")
    (folder / MANIFEST).write_text(manifest)
    return net


def next_steps(network: Network) -> list[str]:
    """The commands to run next, as printed by ``nbx network init`` (exact, runnable)."""
    first = EXAMPLE_ISSUER if EXAMPLE_ISSUER in network.bureaus else network.bureaus[0]
    others = [cc for cc in network.bureaus if cc != first]
    d = network.folder
    cfg = {cc: network.config(cc) for cc in network.bureaus}
    to = ",".join(others)
    lines = [f"network of {len(network.bureaus)} bureaus in {d}: {', '.join(network.bureaus)}"]
    if network.postgres is not None:
        lines += [
            f"stores: a database per bureau on the PostgreSQL server `nbx network up` runs at "
            f"{network.postgres}; in each terminal where you run nbx, its password:",
            f'  export {PG_PASSWORD_ENV}="$(cat {network.password_file})"',
        ]
    if network.broker == "kafka":
        lines += [
            f"next: each bureau's daemon, against the Kafka cluster at {network.bootstrap}:",
            *(f"  nbx consume --config {cfg[cc]}" for cc in network.bureaus),
        ]
    else:
        lines += [
            "next: in a second terminal, the broker and every bureau's daemon (Ctrl-C stops all):",
            f"  nbx network up {d}",
        ]
    lines += [
        f"then: publish from {first}, read it at each recipient, cancel it:",
        f"  nbx publish --config {cfg[first]} {d / 'notices' / 'red.json'} --to {to}",
        *(f'  nbx inbox show IT-2025-0001 --purpose "try" --config {cfg[cc]}' for cc in others),
        f"  nbx status IT-2025-0001 --config {cfg[first]}",
        f'  nbx cancel IT-2025-0001 --reason "arrested" --config {cfg[first]}',
        f"  nbx status IT-2025-0001 --config {cfg[first]}",
        f"policies: {d / 'policies'} (one file per country, default.toml for the others)",
    ]
    if first != EXAMPLE_ISSUER:
        lines.append(
            f"note: the example notices are issued by {EXAMPLE_ISSUER}: to publish one from "
            f"{first}, set its issuing_bureau to {first} and its notice_id to {first}-..."
        )
    return lines


def publish_command(network: Network) -> str:
    """The command that publishes the network's directory file to ``nbx.directory`` (what the
    anchor operator runs after each ``nbx directory add|rotate|revoke``)."""
    d = network.folder
    return (
        f"nbx directory publish {d / 'directory.json'} --anchor "
        f"{d / 'anchor' / 'trust-anchor.pub'} --bootstrap {network.bootstrap}"
    )


async def publish_network_directory(network: Network) -> int:
    """Verify ``DIR/directory.json`` with the network's anchor and publish it to
    ``nbx.directory`` on the network's broker; returns its serial."""
    anchor = load_anchor_public_key(network.folder / "anchor" / "trust-anchor.pub")
    directory = Directory.load(network.folder / "directory.json", anchor)
    settings = KafkaSettings(
        bootstrap=network.bootstrap, client_id="nbx-network", enable_idempotence=False
    )
    await publish_directory(settings, directory.signed)
    return directory.serial
