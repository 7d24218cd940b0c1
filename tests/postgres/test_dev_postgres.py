"""`nbx dev-postgres`: a PostgreSQL server in the foreground for trying the PostgreSQL store.

It prints each database's url and how to export the password (kept in a 0600 file, never
printed); SIGINT/SIGTERM stop the server by pid; ``--data-dir`` keeps the cluster and its password
from one run to the next."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from broker import devpg
from broker.cli.brokers import password_file_of
from broker.errors import DevBrokerError
from broker.node.network import PG_PASSWORD_ENV
from tests.node.test_cli_node import nbx_in_process

pytestmark = [pytest.mark.postgres, pytest.mark.process]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = Path(f"/proc/{pid}/stat")  # a zombie still answers kill(0)
    return state.exists() and state.read_text().split(")")[-1].split()[0] == "Z"


def _wait_gone(pid: int, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _gone(pid)


class Running:
    """An `nbx dev-postgres` process and what it printed until it was ready."""

    def __init__(self, *args: str) -> None:
        """Start it and read its output up to ``press Ctrl-C to stop``."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "broker", "dev-postgres", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] != "press Ctrl-C to stop":
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                pytest.fail(f"nbx dev-postgres ended before it was ready:\n{lines}\n{err}")
            lines.append(line.rstrip("\n"))
        self.lines = lines
        ready = re.fullmatch(
            r"PostgreSQL ready on 127\.0\.0\.1:(\d+) pid=(\d+) data=(.+)", lines[0]
        )
        assert ready, lines
        self.port, self.pid, self.data = int(ready[1]), int(ready[2]), Path(ready[3])
        export = next(x for x in lines if x.startswith("  export "))
        found = re.fullmatch(rf'  export {PG_PASSWORD_ENV}="\$\(cat (.+)\)"', export)
        assert found, export
        self.password_file = Path(found[1])

    def password(self) -> str:
        """The password, as the printed export line reads it."""
        return self.password_file.read_text().strip()

    def connect(self, database: str) -> psycopg.Connection[tuple[object, ...]]:
        """A connection as the printed url and password give it."""
        return psycopg.connect(
            f"postgresql://nbx@127.0.0.1:{self.port}/{database}",
            password=self.password(),
            autocommit=True,
            connect_timeout=5,
        )

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str, str]:
        """Send ``signum``; its exit code and the rest of its output."""
        self.proc.send_signal(signum)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        """Clean up after a failed test (the server is in its own session: its pid too)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not _gone(self.pid):
            os.kill(self.pid, signal.SIGKILL)


def test_prints_the_urls_and_the_password_export_and_ctrl_c_stops_the_server() -> None:
    """Each --database is created and printed with its url; the password is in a 0600 file the
    printed export line reads, and appears nowhere in the output; the url and that password
    connect; SIGINT stops the server (its pid is gone) and removes the temporary cluster and the
    password file."""
    run = Running("--database", "nbx_fr", "--database", "nbx_it")
    try:
        url = f"postgresql://nbx@127.0.0.1:{run.port}"
        assert f"database nbx_fr: {url}/nbx_fr" in run.lines
        assert f"database nbx_it: {url}/nbx_it" in run.lines
        assert run.lines[-5:] == [
            "a node.toml reaches it with:",
            "  [sink]",
            f'  url = "{url}/nbx_fr"',
            f'  password_env = "{PG_PASSWORD_ENV}"',
            "press Ctrl-C to stop",
        ]
        assert stat.S_IMODE(run.password_file.stat().st_mode) == 0o600
        password = run.password()
        assert len(password) >= 20
        assert password not in "\n".join(run.lines)
        for db in ("nbx_fr", "nbx_it"):
            with run.connect(db) as conn:
                assert conn.execute("SELECT current_database()").fetchone() == (db,)
        code, out, err = run.stop(signal.SIGINT)
    finally:
        run.kill()
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "PostgreSQL stopped"
    assert password not in out + err
    assert _wait_gone(run.pid)
    assert not run.data.exists()
    assert not run.password_file.exists()


def test_data_dir_keeps_the_cluster_and_its_password(tmp_path: Path) -> None:
    """With --data-dir the cluster, its databases and the password file outlive a stop (SIGTERM);
    the second run starts on them with the same password; a cluster whose password file is gone
    is refused with one line."""
    data = tmp_path / "pg"
    first = Running("--data-dir", str(data), "--database", "nbx_fr")
    try:
        assert first.data == data.resolve()
        assert first.password_file == password_file_of(data.resolve())
        with first.connect("nbx_fr") as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (7)")
        password = first.password()
        code, _, err = first.stop(signal.SIGTERM)
    finally:
        first.kill()
    assert code == 0, err
    assert _wait_gone(first.pid)
    assert (data / "PG_VERSION").exists()
    second = Running("--data-dir", str(data))
    try:
        assert second.password() == password
        assert not any(x.startswith("database ") for x in second.lines)
        with second.connect("nbx_fr") as conn:
            assert conn.execute("SELECT n FROM kept").fetchall() == [(7,)]
        code, _, err = second.stop()
    finally:
        second.kill()
    assert code == 0, err
    assert _wait_gone(second.pid)
    second.password_file.unlink()
    out = nbx_in_process("dev-postgres", "--data-dir", str(data))
    assert out.returncode == 1
    assert out.stderr == (
        f"nbx: error: {data.resolve()}: holds a cluster but not its password file "
        f"{second.password_file} (start it with the password file it was created with, or use "
        "a new --data-dir)\n"
    )


def test_a_database_name_that_is_not_a_plain_identifier_is_refused() -> None:
    """--database takes names that go into a url unquoted: anything else is one line, exit 2,
    before a server starts."""
    out = nbx_in_process("dev-postgres", "--database", "FR; DROP")
    assert out.returncode == 2
    assert out.stderr == (
        "nbx: error: --database: 'FR; DROP' is not a database name NBX creates (lower-case "
        "letters, digits and _, not starting with a digit, such as nbx_fr) (see 'nbx "
        "dev-postgres --help')\n"
    )


def test_a_port_in_use_is_refused_before_a_server_starts() -> None:
    """--port on which something listens: one line, exit 2, nothing started."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = nbx_in_process("dev-postgres", "--port", str(port))
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == (
        f"nbx: error: --port: 127.0.0.1:{port} is in use (see 'nbx dev-postgres --help')\n"
    )


def test_a_server_that_cannot_start_says_why_on_its_first_line() -> None:
    """devpg on a port something else holds: the error's first line (the one `nbx: error:`
    prints) carries PostgreSQL's own reason, and the temporary cluster is removed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DevBrokerError) as failed:
            devpg.start(port=port, timeout_s=60)
    first = str(failed.value).splitlines()[0]
    found = re.fullmatch(r"PostgreSQL exited at start: (.+) \(log (\S+)\.log\):", first)
    assert found is not None, str(failed.value)
    assert "could not" in found[1] or "Address already in use" in found[1], first
    assert not Path(found[2]).exists()  # the data folder beside the log
    Path(found[2] + ".log").unlink(missing_ok=True)
