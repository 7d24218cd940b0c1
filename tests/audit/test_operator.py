"""Who the operator is: ``[audit] operator`` in node.toml, else NBX_OPERATOR, else the OS user;
``nbx inbox show`` requires --purpose and records both."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.cli import main
from broker.node.config import NodeConfig
from broker.node.provision import provision
from broker.sinks import SqliteSink
from broker.sinks.audit import default_operator
from tests.node.states_kit import NOTICE_ID, Inbox, notice, pipeline


def test_the_operator_comes_from_config_then_env_then_the_os_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NBX_OPERATOR", raising=False)
    assert default_operator(None) == getpass.getuser()
    monkeypatch.setenv("NBX_OPERATOR", "duty-officer-3")
    assert default_operator(None) == "duty-officer-3"
    assert default_operator("dpo-1") == "dpo-1"


def test_inbox_show_records_operator_and_purpose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBX_OPERATOR", "from-env")  # not a node.toml key: ignored by the config
    path = provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1")["FR"]
    path.write_text(path.read_text() + '\n[audit]\noperator = "officer-12"\n')
    config = NodeConfig.load(path)
    assert config.audit.operator == "officer-12"
    sink = SqliteSink(config.sink_path())
    try:
        Inbox(pipeline(sink)).deliver(notice())
    finally:
        sink.close()
    runner = CliRunner()
    missing = runner.invoke(main, ["inbox", "show", "--config", str(path), NOTICE_ID])
    assert missing.exit_code == 2
    assert missing.stderr == "nbx: error: --purpose: required (see 'nbx inbox show --help')\n"
    shown = runner.invoke(
        main, ["inbox", "show", "--config", str(path), NOTICE_ID, "--purpose", "case 41"]
    )
    assert shown.exit_code == 0, shown.output
    sink = SqliteSink(config.sink_path())
    try:
        last = sink.audit_entries()[-1]
    finally:
        sink.close()
    assert (last.action, last.notice_id, last.operator, last.purpose) == (
        "consultation",
        NOTICE_ID,
        "officer-12",
        "case 41",
    )
