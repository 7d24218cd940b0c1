"""`nbx inbox list|show` show a notice's state; `--actionable` lists only actionable notices."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from broker.cli import main
from broker.node.config import NodeConfig
from broker.node.provision import provision
from broker.sinks.sqlite import SqliteSink
from broker.vocab import MessageKind
from tests.node.states_kit import NOTICE_ID, Inbox, notice, oversight, pipeline, review


def _inbox(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["inbox", *args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result.output


def test_inbox_list_shows_the_state_and_filters_the_actionable(tmp_path: Path) -> None:
    config = provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1")["FR"]
    sink = SqliteSink(NodeConfig.load(config).sink_path())
    inbox = Inbox(pipeline(sink))
    red = notice()
    try:
        inbox.deliver(red)
        line = _inbox(config, "list").strip()
        assert line.split() == [NOTICE_ID, "red", "from", "IT", "v1", "H1", "B2", "pending-review"]
        assert json.loads(_inbox(config, "list", "--json"))[0]["state"] == "pending-review"
        assert json.loads(_inbox(config, "list", "--actionable", "--json")) == []
        assert _inbox(config, "list", "--actionable") == ""
        inbox.deliver(review(red))
        listed = json.loads(_inbox(config, "list", "--actionable", "--json"))
        assert [(r["notice_id"], r["state"]) for r in listed] == [(NOTICE_ID, "actionable")]
        inbox.deliver(oversight(MessageKind.BLOCK))
        assert json.loads(_inbox(config, "list", "--actionable", "--json")) == []
        assert _inbox(config, "list").strip().endswith("blocked (CCF-2026-7: challenge pending)")
        shown = _inbox(config, "show", NOTICE_ID, "--purpose", "check")
        assert "state: blocked (CCF-2026-7: challenge pending)" in shown
        assert (
            json.loads(_inbox(config, "show", NOTICE_ID, "--purpose", "check", "--json"))["state"]
            == "blocked"
        )
    finally:
        sink.close()
