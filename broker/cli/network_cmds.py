"""``nbx network init|up``: a network of several bureaus in one folder, and running it.

``up`` starts the development broker the network was written for, then every bureau's daemon
(``nbx consume``) as a child process in its own session, prints each child's lines prefixed with
its bureau (``[FR] ...``, coloured on a terminal) and, on Ctrl-C or SIGTERM, stops every daemon
and then the broker by pid and exits 0. Start-up progress is a rich progress display on a
terminal and plain lines otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from broker.errors import NbxError

#: the colours of the ``[CC]`` prefixes, one per bureau in turn
COLOURS: tuple[str, ...] = ("cyan", "magenta", "green", "yellow", "blue", "red")
#: the log event a daemon prints once it consumes (``ConsumerDaemon.run``)
READY_EVENT = '"event": "daemon.started"'
#: how long ``up`` waits for the broker, then for each daemon, before it gives up
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


@click.group("network")
def network() -> None:
    """Set up and run a network of several bureaus in one folder (for trying NBX)."""


@network.command("init")
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--bureaus", required=True, help="The bureaus, comma-separated: IT,FR,DE,ES (at least two)."
)
@click.option(
    "--policies",
    type=click.Path(path_type=Path),
    default=None,
    help="Policy folder to copy (default: the bundled example policies).",
)
@click.option(
    "--bootstrap",
    default=None,
    help="Kafka host:port the nodes use (default 127.0.0.1:19092, where `nbx network up` runs "
    "its broker).",
)
@click.option(
    "--impl",
    type=click.Choice(["noida", "tansu", "kafka"]),
    default=None,
    help="The broker: a development broker `nbx network up` runs (noida, tansu) or your own "
    "Apache Kafka at --bootstrap (kafka). Default: noida on a loopback address, else kafka.",
)
@click.option(
    "--store",
    type=click.Choice(["sqlite", "postgresql"]),
    default="sqlite",
    show_default=True,
    help="Each bureau's store: a SQLite file, or a database (nbx_<cc>) on a PostgreSQL server "
    "`nbx network up` runs.",
)
@click.option(
    "--postgres",
    "postgres",
    default=None,
    help="With --store postgresql: 127.0.0.1:PORT where `nbx network up` runs PostgreSQL "
    "(default 127.0.0.1:15432).",
)
def network_init(
    folder: Path,
    bureaus: str,
    policies: Path | None,
    bootstrap: str | None,
    impl: str | None,
    store: str,
    postgres: str | None,
) -> None:
    """Write a network into DIR: one trust anchor, each bureau's keys, one signed directory,
    one ready node.toml per bureau, the example notices; then print the next steps."""
    from broker import devbroker
    from broker.examples import notices_dir, policies_dir
    from broker.node.network import (
        DEFAULT_BOOTSTRAP,
        DEFAULT_POSTGRES,
        NetworkError,
        broker_kind,
        init_network,
        next_steps,
    )
    from broker.node.network import parse_bureaus as parse

    if postgres is not None and store != "postgresql":
        msg = "--postgres: only with --store postgresql"
        raise NetworkError(msg)

    ids = parse(bureaus)
    address = bootstrap or DEFAULT_BOOTSTRAP
    kind = broker_kind(address, impl)
    dev = kind != "kafka"
    net = init_network(
        folder,
        ids,
        policies=policies or policies_dir(),
        notices=notices_dir(),
        bootstrap=address,
        broker=kind,
        stamps_log_append_time=not dev or devbroker.STAMPS_LOG_APPEND_TIME[kind],
        paces_empty_fetches=dev and devbroker.NEEDS_FETCH_PACING[kind],
        idempotent_producer=not dev or devbroker.IDEMPOTENT_PRODUCER[kind],
        postgres=(postgres or DEFAULT_POSTGRES) if store == "postgresql" else None,
    )
    for cc in ids:
        click.echo(f"wrote {net.config(cc)}")
    for line in next_steps(net):
        click.echo(line)


class _Printer:
    """Prints the children's lines with a ``[CC]`` prefix, one line at a time (threads)."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour
        self.lock = threading.Lock()
        self.sink: Callable[[str], None] = click.echo

    def prefix(self, name: str, index: int) -> str:
        """``[FR]``, coloured when printing to a terminal."""
        tag = f"[{name}]"
        return click.style(tag, fg=COLOURS[index % len(COLOURS)]) if self.colour else tag

    def line(self, text: str) -> None:
        """Print one line (never interleaved with another)."""
        with self.lock:
            self.sink(text)

    def error(self, text: str) -> None:
        """Print one line on stderr."""
        with self.lock:
            click.echo(text, err=True)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _pump(
    stream: IO[str], tag: str, printer: _Printer, ready: threading.Event, idle: Callable[[], None]
) -> None:
    """Copy a child's output line by line, setting ``ready`` at its ready line."""
    for raw in stream:
        text = raw.rstrip("\n")
        if READY_EVENT in text and not ready.is_set():
            ready.set()
            idle()
        printer.line(f"{tag} {text}")


@contextlib.contextmanager
def _progress(on_terminal: bool, printer: _Printer, total: int) -> Iterator[Callable[[str], None]]:
    """Start-up steps: a rich progress bar on a terminal (daemon lines printed above it), plain
    lines otherwise. Yields ``step(description)``, called once per finished step."""
    if not on_terminal:
        yield lambda text: printer.line(text)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), transient=True
    ) as progress:
        task = progress.add_task("starting the network", total=total)
        printer.sink = lambda text: progress.console.print(text, markup=False, highlight=False)

        def step(text: str) -> None:
            progress.update(task, advance=1, description=text)
            printer.line(text)

        try:
            yield step
        finally:
            printer.sink = click.echo


def _stop(children: dict[str, subprocess.Popen[str]], pumps: list[threading.Thread]) -> None:
    """SIGTERM every child still running (by pid), then wait; SIGKILL one that does not stop.
    Then print what each one said last (its pump reads to the end of its output)."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=STOP_TIMEOUT_S)
    for pump in pumps:
        pump.join(timeout=STOP_TIMEOUT_S)
    for child in children.values():
        if child.stdout is not None:
            child.stdout.close()


@network.command("up")
@click.argument(
    "folder", metavar="DIR", type=click.Path(path_type=Path, exists=True, file_okay=False)
)
def network_up(folder: Path) -> None:
    """Run DIR's development broker and every bureau's daemon in the foreground.

    Each daemon's lines are printed with its bureau in front (``[FR] ...``). Ctrl-C or SIGTERM
    stops every daemon, then the broker, and exits 0; a daemon or the broker that exits by itself
    stops the others and exits 1. The broker keeps its data in DIR/broker (noida), so a network
    brought up again still holds what it held.
    """
    from broker import devbroker
    from broker.node.network import Network

    net = Network.load(folder)
    if net.broker == "kafka":
        msg = (
            f"{folder / 'network.toml'}: written for the Kafka cluster at {net.bootstrap}; "
            "`nbx network up` runs a development broker only: start each daemon with "
            "`nbx consume --config DIR/CC/node.toml`"
        )
        raise NbxError(msg)
    host, port = net.host_port
    if host not in ("127.0.0.1", "localhost"):
        msg = f"{folder / 'network.toml'}: bootstrap {net.bootstrap} is not a loopback address"
        raise NbxError(msg)
    if not _port_free(devbroker.HOST, port):
        msg = f"{net.bootstrap}: port in use (is `nbx network up {folder}` running already?)"
        raise NbxError(msg)
    if net.postgres is not None and not _port_free(devbroker.HOST, net.postgres_port):
        msg = f"{net.postgres}: port in use (is `nbx network up {folder}` running already?)"
        raise NbxError(msg)
    on_terminal = sys.stdout.isatty()
    printer = _Printer(colour=on_terminal)
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    children: dict[str, subprocess.Popen[str]] = {}
    pumps: list[threading.Thread] = []
    broker: devbroker.DevBroker | None = None
    postgres: Any = None
    code = 0
    try:
        with _progress(on_terminal, printer, total=1 + len(net.bureaus)) as step:
            if net.postgres is not None:
                postgres = _start_postgres(net, printer)
            printer.line(f"starting the {net.broker} broker on {net.bootstrap}")
            broker = devbroker.start(
                net.broker,  # type: ignore[arg-type]  # noida or tansu: checked by Network.load
                port=port,
                data_dir=folder / "broker",
                timeout_s=START_TIMEOUT_S,
            )
            step(f"broker {net.broker} pid {broker.pid} ready on {net.bootstrap}")
            _publish_directory(net, printer)
            code = _run(net, printer, step, stop, children, pumps, broker)
    finally:
        _stop(children, pumps)
        if broker is not None:
            broker.stop(clean=False)
            printer.line(f"stopped {len(children)} daemons and the broker (pid {broker.pid})")
        if postgres is not None:
            pid = postgres.process.pid if postgres.process is not None else None
            postgres.stop(clean=False)
            printer.line(f"stopped PostgreSQL (pid {pid})")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.exit(code)


def _start_postgres(net: Any, printer: _Printer) -> Any:
    """Start the network's PostgreSQL server (data in DIR/postgres, the password of
    DIR/postgres.password), create each bureau's database and export the password to the
    daemons this process starts."""
    from broker import devpg
    from broker.node.network import PG_PASSWORD_ENV, database_of

    password = net.password_file.read_text().strip()
    printer.line(f"starting PostgreSQL on {net.postgres}")
    server = devpg.start(
        net.folder / "postgres",
        port=net.postgres_port,
        password=password,
        timeout_s=START_TIMEOUT_S,
    )
    try:
        for cc in net.bureaus:
            server.create_database(database_of(cc))
    except BaseException:
        server.stop(clean=False)
        raise
    os.environ[PG_PASSWORD_ENV] = password
    printer.line(
        f"PostgreSQL pid {server.pid} ready on {net.postgres}: databases "
        + ", ".join(database_of(cc) for cc in net.bureaus)
    )
    return server


def _publish_directory(net: Any, printer: _Printer) -> None:
    """Publish DIR/directory.json to nbx.directory, where a bureau that joins reads it."""
    import asyncio

    from broker.node.network import publish_command, publish_network_directory

    serial = asyncio.run(publish_network_directory(net))
    printer.line(
        f"published the directory (serial {serial}) to nbx.directory for bureaus that join; "
        f"after each change the anchor publishes it again: {publish_command(net)}"
    )


def _run(
    net: Any,
    printer: _Printer,
    step: Callable[[str], None],
    stop: threading.Event,
    children: dict[str, subprocess.Popen[str]],
    pumps: list[threading.Thread],
    broker: Any,
) -> int:
    """Start the daemons, wait until each is ready, then until ``stop`` or a child exits."""
    if stop.is_set():  # Ctrl-C while the broker was starting
        return 0
    readiness: dict[str, threading.Event] = {}
    changed = threading.Event()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for index, cc in enumerate(net.bureaus):
        child = subprocess.Popen(
            [sys.executable, "-m", "broker", "consume", "--config", str(net.config(cc))],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # Ctrl-C reaches `up` only; it stops each child by pid
        )
        children[cc] = child
        ready = readiness[cc] = threading.Event()
        assert child.stdout is not None
        pump = threading.Thread(
            target=_pump,
            args=(child.stdout, printer.prefix(cc, index), printer, ready, changed.set),
            daemon=True,
        )
        pump.start()
        pumps.append(pump)
        printer.line(f"{printer.prefix(cc, index)} daemon pid {child.pid} started")
    waiting = list(net.bureaus)
    while waiting:
        if stop.is_set():
            return 0
        failed = _exited(children, broker)
        if failed:
            printer.error(f"nbx: error: {failed}; stopping the network")
            return 1
        for cc in [c for c in waiting if readiness[c].is_set()]:
            waiting.remove(cc)
            step(f"{cc} ready ({len(net.bureaus) - len(waiting)}/{len(net.bureaus)})")
        changed.wait(timeout=0.2)
        changed.clear()
    first = "IT" if "IT" in net.bureaus else net.bureaus[0]
    others = ",".join(cc for cc in net.bureaus if cc != first)
    printer.line(
        f"network up: {len(net.bureaus)} bureaus on {net.bootstrap}; from another terminal: "
        f"nbx publish --config {net.config(first)} {net.folder / 'notices' / 'red.json'} "
        f"--to {others}; Ctrl-C stops everything"
    )
    while not stop.wait(timeout=0.5):
        failed = _exited(children, broker)
        if failed:
            printer.error(f"nbx: error: {failed}; stopping the network")
            return 1
    return 0


def _exited(children: dict[str, subprocess.Popen[str]], broker: Any) -> str | None:
    """What exited by itself (a daemon, the broker), or None."""
    if not broker.is_running():
        return f"the broker (pid {broker.pid}) exited"
    for cc, child in children.items():
        if child.poll() is not None:
            return f"{cc}'s daemon (pid {child.pid}) exited with code {child.returncode}"
    return None


def register(group: click.Group) -> None:
    """Add ``network`` to ``group``."""
    group.add_command(network)
