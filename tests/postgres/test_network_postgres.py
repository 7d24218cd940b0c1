"""`nbx network init --store postgresql` and `nbx network up` with PostgreSQL stores: every
bureau's store is a database of its own on a PostgreSQL server `up` runs beside the broker."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import psycopg
import pytest

from broker import devbroker, devpg
from broker.node.config import NodeConfig
from broker.node.network import PG_PASSWORD_ENV, Network
from tests.conftest import broker_impl
from tests.node.test_cli_node import nbx_in_process
from tests.postgres.test_dev_postgres import _wait_gone


def test_init_points_every_store_at_a_database_and_keeps_the_password_apart(
    tmp_path: Path,
) -> None:
    """Each node.toml's [sink] names its bureau's database on the manifest's server and the
    password variable; the password is in DIR/postgres.password (0600), in no node file; the next
    steps say how to export it."""
    net = tmp_path / "net"
    out = nbx_in_process(
        "network", "init", str(net), "--bureaus", "IT,FR", "--store", "postgresql",
        "--postgres", "127.0.0.1:25432",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    manifest = tomllib.loads((net / "network.toml").read_text())
    assert manifest["postgres"] == "127.0.0.1:25432"
    password_file = net / "postgres.password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    assert len(password) >= 20
    for cc in ("IT", "FR"):
        config = NodeConfig.load(net / cc / "node.toml")
        assert config.sink.url == f"postgresql://nbx@127.0.0.1:25432/nbx_{cc.lower()}"
        assert config.sink.password_env == PG_PASSWORD_ENV
        assert password not in (net / cc / "node.toml").read_text()
    assert f'  export {PG_PASSWORD_ENV}="$(cat {password_file})"' in out.stdout.splitlines()
    assert password not in out.stdout


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("--postgres", "127.0.0.1:25432"),
            "nbx: error: --postgres: only with --store postgresql\n",
        ),
        (
            ("--store", "postgresql", "--postgres", "db.example:5432"),
            "nbx: error: --postgres: expected 127.0.0.1:PORT (nbx network up runs it), got "
            "'db.example:5432'\n",
        ),
    ],
)
def test_init_refuses_a_postgres_address_it_cannot_run(
    tmp_path: Path, args: tuple[str, ...], line: str
) -> None:
    """One line, exit 1, nothing written."""
    out = nbx_in_process("network", "init", str(tmp_path / "net"), "--bureaus", "IT,FR", *args)
    assert (out.returncode, out.stderr) == (1, line)
    assert not (tmp_path / "net").exists()


@pytest.mark.broker
@pytest.mark.postgres
@pytest.mark.process
def test_up_runs_postgresql_and_a_notice_is_stored_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nbx network up` on a --store postgresql network starts PostgreSQL (its pid printed) with
    a database per bureau, the broker and the daemons; IT publishes to FR with the exported
    password, FR's daemon stores the notice in nbx_fr and IT's store gets the delivered receipt;
    SIGINT stops the daemons, the broker and PostgreSQL (its pid gone), exit 0."""
    net = tmp_path / "net"
    pg_at = f"127.0.0.1:{devpg.free_port()}"
    init = nbx_in_process(
        "network", "init", str(net), "--bureaus", "IT,FR", "--impl", broker_impl(),
        "--bootstrap", f"127.0.0.1:{devbroker.free_port()}", "--store", "postgresql",
        "--postgres", pg_at,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    password = Network.load(net).password_file.read_text().strip()
    env = {k: v for k, v in os.environ.items() if k != PG_PASSWORD_ENV}
    up = subprocess.Popen(
        [sys.executable, "-m", "broker", "network", "up", str(net)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    network_up = threading.Event()

    def read() -> None:
        assert up.stdout is not None
        for line in up.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("network up: "):
                network_up.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert network_up.wait(timeout=180), lines
        monkeypatch.setenv(PG_PASSWORD_ENV, password)
        sent = nbx_in_process(
            "publish", "--config", str(net / "IT" / "node.toml"),
            str(net / "notices" / "red.json"), "--to", "FR",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert _delivered(net / "IT" / "node.toml", "FR"), lines[-20:]
        with psycopg.connect(
            f"postgresql://nbx@{pg_at}/nbx_fr", password=password, connect_timeout=5
        ) as db:
            row = db.execute("SELECT sender FROM notices WHERE notice_id = %s", (NOTICE,))
            assert row.fetchall() == [("IT",)]
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=120)
        reader.join(timeout=30)
        for stream in (up.stdout, up.stderr):
            if stream is not None:
                stream.close()
    assert up.returncode == 0, lines[-20:]
    assert lines[0] == f"starting PostgreSQL on {pg_at}"
    ready = re.fullmatch(
        rf"PostgreSQL pid (\d+) ready on {pg_at}: databases nbx_it, nbx_fr", lines[1]
    )
    assert ready is not None, lines[:3]
    assert lines[-1] == f"stopped PostgreSQL (pid {ready[1]})"
    assert _wait_gone(int(ready[1]))


NOTICE = "IT-2025-0001"


def _delivered(config: Path, recipient: str, timeout_s: float = 120.0) -> bool:
    """Wait until the sender's `nbx status --json` shows ``recipient``'s delivered receipt."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = nbx_in_process("status", NOTICE, "--config", str(config), "--json")
        if out.returncode == 0:
            report = json.loads(out.stdout)
            if any(
                r["recipient"] == recipient
                and any(x["status"] == "delivered" for m in r["messages"] for x in m["receipts"])
                for r in report["recipients"]
            ):
                return True
        time.sleep(0.2)
    return False
