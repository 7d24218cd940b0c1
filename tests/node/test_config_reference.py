"""docs/node-toml.md is generated from the config model and cannot drift from it; every key is
explained, and the environment names it gives really override the file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.cli import main
from broker.node.config import NodeConfig
from broker.node.config_reference import REFERENCE_PATH, all_keys, render
from broker.node.provision import provision

ROOT = Path(__file__).resolve().parents[2]


def test_the_reference_in_docs_is_the_generated_text() -> None:
    """Regenerate with `nbx node config-reference --out docs/node-toml.md` when this fails."""
    assert (ROOT / REFERENCE_PATH).read_text() == render()


def test_every_key_has_a_meaning_and_an_environment_name() -> None:
    keys = all_keys()
    assert [k.dotted for k in keys if not k.meaning.strip()] == []
    assert len({k.env for k in keys}) == len(keys)
    assert {"bureau", "kafka.bootstrap", "security.min_suite", "retention.confirm_within"} <= {
        k.dotted for k in keys
    }
    required = {k.dotted for k in keys if k.default is None}
    assert required == {
        "bureau", "keys.dir", "trust.anchor", "trust.directory", "kafka.bootstrap",
        "policy.dir", "sink.url",
    }  # fmt: skip


def test_every_key_node_init_writes_is_in_the_reference(tmp_path: Path) -> None:
    config = provision(tmp_path, ["FR", "DE"], bootstrap="127.0.0.1:1")["FR"]
    data = tomllib.loads(config.read_text())
    written = {
        key if not isinstance(value, dict) else f"{key}.{sub}"
        for key, value in data.items()
        for sub in (value if isinstance(value, dict) else [None])
    }
    assert written <= {k.dotted for k in all_keys()}


@pytest.mark.parametrize(
    ("env", "value", "dotted", "expected"),
    [
        ("NBX_KAFKA__BOOTSTRAP", "other:9093", "kafka.bootstrap", "other:9093"),
        ("NBX_SECURITY__MIN_SUITE", "2", "security.min_suite", 2),
        ("NBX_RETENTION__WARN_DAYS", "5", "retention.warn_days", 5),
    ],
)
def test_the_environment_names_in_the_reference_override_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, dotted: str,
    expected: object,
) -> None:  # fmt: skip
    assert env in {k.env for k in all_keys() if k.dotted == dotted}
    config = provision(tmp_path, ["FR", "DE"], bootstrap="127.0.0.1:1")["FR"]
    monkeypatch.setenv(env, value)
    loaded = NodeConfig.load(config)
    section, _, name = dotted.partition(".")
    assert getattr(getattr(loaded, section), name) == expected


def test_the_command_prints_and_writes_the_reference(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(main, ["node", "config-reference"])
    assert printed.exit_code == 0, printed.output
    assert printed.output == render()
    out = tmp_path / "node-toml.md"
    written = runner.invoke(main, ["node", "config-reference", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert written.output == f"wrote {out}\n"
    assert out.read_text() == render()
