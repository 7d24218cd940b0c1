"""``nbx dev-broker``, ``nbx dev-postgres`` and ``nbx demo``."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

import click

from broker import devbroker
from broker.errors import DevBrokerError


@click.command("dev-broker")
@click.option(
    "--impl",
    type=click.Choice(devbroker.IMPLS),
    default="noida",
    show_default=True,
    help="Which embedded Kafka-protocol broker to run.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default: a free one)."
)
def dev_broker(impl: devbroker.Impl, port: int | None) -> None:
    """Run an embedded Kafka-protocol broker on 127.0.0.1 in the foreground (Ctrl-C stops it)."""
    broker = devbroker.start(impl, port=port)
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        click.echo(f"{impl} broker ready: bootstrap={broker.bootstrap} pid={broker.pid}")
        click.echo("press Ctrl-C to stop")
        sys.stdout.flush()
        while not stop.wait(0.5):
            if not broker.is_running():
                click.echo(f"nbx: error: the {impl} broker exited; its log:", err=True)
                click.echo(broker.log_text(), err=True)
                sys.exit(1)
    finally:
        broker.stop()
    click.echo("broker stopped")


#: a database name ``nbx dev-postgres --database`` accepts (a plain identifier: it goes into urls)
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _database_names(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    for name in value:
        if not _DATABASE_NAME.fullmatch(name):
            msg = (
                f"{name!r} is not a database name NBX creates (lower-case letters, digits and _, "
                "not starting with a digit, such as nbx_fr)"
            )
            raise click.BadParameter(msg)
    return tuple(dict.fromkeys(value))


def password_file_of(data_dir: Path) -> Path:
    """Where ``nbx dev-postgres --data-dir DIR`` keeps the superuser's password: ``DIR.password``
    beside the cluster (and its log, ``DIR.log``), readable by its owner only."""
    return data_dir.parent / f"{data_dir.name}.password"


def _write_secret(path: Path, secret: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    path.chmod(0o600)


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) != 0


@click.command("dev-postgres")
@click.option(
    "--data-dir",
    "folder",  # a folder it creates (tests/cli/test_errors.py: not an input to check)
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the cluster in this folder (created if missing; started as it is if it holds "
    "one), its password in DATA_DIR.password. Default: a temporary cluster removed at the end.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default: a free one)."
)
@click.option(
    "--database",
    "databases",
    multiple=True,
    callback=_database_names,
    help="Create this database if missing and print its url (repeatable; one per bureau, "
    "e.g. nbx_fr).",
)
def dev_postgres(folder: Path | None, port: int | None, databases: tuple[str, ...]) -> None:
    """Run a PostgreSQL server on 127.0.0.1 in the foreground for trying the PostgreSQL store
    (Ctrl-C stops it): prints each database's [sink] url and how to export the password, which is
    kept in a file readable by you only and never printed."""
    from broker import devpg
    from broker.node.network import PG_PASSWORD_ENV, database_of

    if port is not None and not _port_free(devpg.HOST, port):
        msg = f"{devpg.HOST}:{port} is in use"
        raise click.BadParameter(msg, param_hint="--port")
    scratch: Path | None = None
    data_dir = folder
    if data_dir is None:
        scratch = Path(tempfile.mkdtemp(prefix="nbx-dev-postgres-"))
        secret_file, password = scratch / "password", None
    else:
        data_dir = data_dir.resolve()
        secret_file = password_file_of(data_dir)
        existing = (data_dir / "PG_VERSION").exists()
        if existing and not secret_file.is_file():
            msg = (
                f"{data_dir}: holds a cluster but not its password file {secret_file} "
                "(start it with the password file it was created with, or use a new --data-dir)"
            )
            raise DevBrokerError(msg)
        password = secret_file.read_text().strip() if existing else None
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    server: devpg.DevPostgres | None = None
    try:
        server = devpg.start(data_dir, port=port, password=password)
        if password is None:
            _write_secret(secret_file, server.password)
        urls = [server.create_database(name) for name in databases]
        click.echo(
            f"PostgreSQL ready on {devpg.HOST}:{server.port} pid={server.pid} "
            f"data={server.data_dir}"
        )
        for name, url in zip(databases, urls, strict=True):
            click.echo(f"database {name}: {url}")
        click.echo(f"the password of user {devpg.SUPERUSER} is in {secret_file} (mode 0600):")
        click.echo(f'  export {PG_PASSWORD_ENV}="$(cat {secret_file})"')
        click.echo("a node.toml reaches it with:")
        click.echo("  [sink]")
        example = urls[0] if urls else server.url(database_of("FR"))
        click.echo(f'  url = "{example}"')
        click.echo(f'  password_env = "{PG_PASSWORD_ENV}"')
        click.echo("press Ctrl-C to stop")
        sys.stdout.flush()
        while not stop.wait(0.5):
            if not server.is_running():
                click.echo("nbx: error: PostgreSQL exited; its log:", err=True)
                click.echo(server.log_text(), err=True)
                sys.exit(1)
    finally:
        if server is not None:
            server.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    click.echo("PostgreSQL stopped")


@click.command("demo")
@click.option(
    "--impl",
    type=click.Choice(devbroker.IMPLS),
    default="noida",
    show_default=True,
    help="Which embedded Kafka-protocol broker to run the demo on.",
)
@click.option(
    "--store",
    type=click.Choice(("sqlite", "postgresql")),
    default="sqlite",
    show_default=True,
    help="Where the bureaus store what they receive: a SQLite file each, or a database each on "
    "a PostgreSQL server the demo starts and stops.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def demo(impl: devbroker.Impl, store: str, as_json: bool) -> None:
    """Run the exchange end to end on an embedded broker and print what each side did."""
    from broker import demo as demo_module

    sys.exit(demo_module.main(impl, as_json=as_json, store=store))


@click.command("ping")
@click.argument("bootstrap")
def ping(bootstrap: str) -> None:
    """Check that the Kafka broker at BOOTSTRAP (host:port) answers, and list its nbx.* topics."""
    from broker.transport import KafkaSettings, list_topics

    topics = asyncio.run(list_topics(KafkaSettings(bootstrap=bootstrap, request_timeout_ms=10_000)))
    click.echo(f"broker at {bootstrap} answered; {len(topics)} topics")
    for name in sorted(t for t in topics if t.startswith("nbx.")):
        click.echo(f"  {name}")


def register(group: click.Group) -> None:
    """Add this module's commands to ``group``."""
    group.add_command(dev_broker)
    group.add_command(dev_postgres)
    group.add_command(ping)
    group.add_command(demo)
