"""`nbx network init --store postgresql` and `nbx network up` with PostgreSQL stores: every
bureau's store is a database of its own on a PostgreSQL server `up` runs beside the broker."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from broker.node.config import NodeConfig
from broker.node.network import PG_PASSWORD_ENV
from tests.node.test_cli_node import nbx_in_process


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
