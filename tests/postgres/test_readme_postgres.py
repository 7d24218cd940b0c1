"""The README's "Point a node at PostgreSQL" section is true: its `[sink]` lines are a valid
node configuration, every `nbx` command it shows exists with the options it uses, and the
password file it names is where `nbx dev-postgres --data-dir` keeps it."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from broker import devpg
from broker.cli.brokers import password_file_of
from broker.node.config import SinkConfig
from broker.node.network import PG_PASSWORD_ENV, point_sink
from broker.node.provision import provision
from tests.conftest import PG_PASSWORD
from tests.node.test_cli_node import nbx_in_process

ROOT = Path(__file__).resolve().parents[2]
TITLE = "## Point a node at PostgreSQL"


def section() -> str:
    """The README's section about PostgreSQL."""
    text = (ROOT / "README.md").read_text()
    start = text.index(TITLE)
    return text[start : text.index("\n## ", start + 1)]


def blocks(kind: str) -> list[str]:
    """The section's fenced blocks of ``kind`` (``sh``, ``toml``)."""
    return re.findall(rf"```{kind}\n(.*?)```", section(), re.S)


def test_the_sink_lines_are_a_valid_configuration() -> None:
    """The `[sink]` block parses into the node's sink settings: a PostgreSQL url without a
    password, the password from the variable `nbx dev-postgres` and the demo use."""
    (toml,) = blocks("toml")
    sink = SinkConfig(**tomllib.loads(toml)["sink"])
    assert not sink.is_file()
    assert sink.password_env == PG_PASSWORD_ENV


def test_every_command_shown_exists_with_its_options() -> None:
    """Each `nbx ...` line of the section, with `--help` added, is accepted by the CLI: the
    command and every option it uses exist (an unknown one is exit 2)."""
    commands = [
        shlex.split(line, comments=True)
        for block in blocks("sh")
        for line in block.splitlines()
        if line.startswith("nbx ")
    ]
    assert len(commands) >= 4
    for words in commands:
        args = [w for w in words[1:] if w != "..."]
        out = nbx_in_process(*args, "--help")
        assert out.returncode == 0, (words, out.stderr)


def test_the_password_file_is_where_dev_postgres_keeps_it() -> None:
    """The section's `--data-dir pg` keeps the password in `pg.password`, as it says."""
    text = section()
    assert "nbx dev-postgres --data-dir pg " in text
    name = password_file_of(Path("pg")).name
    assert f'export {PG_PASSWORD_ENV}="$(cat {name})"' in text


def test_the_error_line_shown_is_the_one_nbx_prints(
    tmp_path: Path, postgres_server: devpg.DevPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The section's example line (a missing database) is what `nbx status` prints for one, on
    the test server instead of db.example:5432, with exit code 3."""
    found = re.search(r"`(nbx: error: the store cannot be opened\s+\(missing\):[^`]*)`", section())
    assert found is not None
    shown = " ".join(found[1].split())  # the README wraps it
    monkeypatch.setenv(PG_PASSWORD_ENV, PG_PASSWORD)
    configs = provision(tmp_path, ["IT", "FR"], bootstrap="127.0.0.1:1")
    point_sink(configs["FR"], "FR", postgres_server.url("nbx_fr"))
    out = nbx_in_process("status", "IT-2025-0001", "--config", str(configs["FR"]))
    assert out.returncode == 3
    where = f"{devpg.HOST}:{postgres_server.port}"
    assert out.stderr == shown.replace("db.example:5432", where) + "\n"
