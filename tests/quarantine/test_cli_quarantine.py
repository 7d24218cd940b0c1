"""`nbx quarantine list|show` and `nbx status`'s pending receipts, end to end on a real broker:
XI publishes a UN notice to CH (whose policy declines UN notices) and FR, then cancels it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from broker import devbroker
from broker.examples import notices_dir, policies_dir
from broker.node.provision import provision
from broker.vocab import REASON_HELP, Reason
from tests.node.test_cli_node import consume_together, nbx_in_process

NOTICE = "XI-2025-UN-0042"
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "cli"


def conforms(document: Any, schema: str) -> None:
    """``document`` validates against ``schemas/cli/<schema>``."""
    import jsonschema

    jsonschema.validate(document, json.loads((SCHEMAS / schema).read_text()))


def nbx(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``nbx`` in this process (the commands of a user, without a new process each)."""
    return nbx_in_process(*args)


def consume(config: Path) -> None:
    """Run the bureau's daemon until its topics are idle."""
    run = nbx("consume", "--config", str(config), "--until-idle", "2")
    assert run.returncode == 0, run.stderr


def status_lines(config: Path) -> list[str]:
    """``nbx status NOTICE`` at the sender, line by line."""
    out = nbx("status", "--config", str(config), NOTICE)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.mark.e2e
def test_quarantine_list_show_and_pending_receipts(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Before XI's daemon ran, `nbx status` says that its daemon collects the receipts; CH's
    quarantine lists the declined package (reason, explanation, read-at position, not kept) in
    text and JSON, `show` prints its headers, filters and a missing offset answer as they
    should; after the cancel CH answers `purged` (not `declined-by-policy`) and quarantines
    nothing more."""
    configs = provision(
        tmp_path,
        ["XI", "CH", "FR"],
        bootstrap=fresh_broker.bootstrap,
        policies=policies_dir(),
        enable_idempotence=idempotence_supported,
        session_timeout_ms=6000,
    )
    un = notices_dir() / "un.json"
    out = nbx("publish", "--config", str(configs["XI"]), str(un), "--to", "CH,FR")
    assert out.returncode == 0, out.stderr
    pending = status_lines(configs["XI"])
    assert pending[0].startswith("CH  publish  sent     no receipt yet")
    assert (
        f"note: 2 messages have no receipt yet. Receipts are collected by this bureau's own "
        f"daemon: keep `nbx consume --config {configs['XI']}` running (or run it with "
        "--until-idle 5) and ask again; a receipt still missing then means the recipient's "
        "daemon has not read the message yet."
    ) in pending
    consume_together(configs["CH"], configs["FR"])

    listed = nbx("quarantine", "list", "--config", str(configs["CH"]))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "nbx.quarantine.CH: 1 record(s)"
    assert lines[1].split() == ["RECORD", "TIME", "REASON", "READ", "AT", "SIZE"]
    row = lines[2].split()
    assert row[0] == "0:0"
    assert row[2:5] == ["declined-by-policy", "nbx.inbox.CH:0:0", "not"]
    assert lines[4] == f"declined-by-policy: {REASON_HELP[Reason.DECLINED_BY_POLICY]}"

    as_json = json.loads(nbx("quarantine", "list", "--config", str(configs["CH"]), "--json").stdout)
    conforms(as_json, "quarantine-list.json")
    assert as_json["bureau"] == "CH"
    assert as_json["topic"] == "nbx.quarantine.CH"
    [record] = as_json["records"]
    assert record["reason"] == "declined-by-policy"
    assert record["source"] == "nbx.inbox.CH:0:0"
    assert record["size"] == 0
    assert record["kept"] is False
    assert record["dropped"] > 0
    assert record["explanation"] == REASON_HELP[Reason.DECLINED_BY_POLICY]
    assert NOTICE not in json.dumps(record)

    shown_json = nbx("quarantine", "show", "--config", str(configs["CH"]), "0", "--json")
    conforms(json.loads(shown_json.stdout), "quarantine-show.json")
    assert json.loads(shown_json.stdout)["offset"] == 0
    shown = nbx("quarantine", "show", "--config", str(configs["CH"]), "0")
    assert shown.returncode == 0, shown.stderr
    assert "  reason   declined-by-policy: " + REASON_HELP[Reason.DECLINED_BY_POLICY] in (
        shown.stdout.splitlines()
    )
    assert "  header   nbx-reason: declined-by-policy" in shown.stdout.splitlines()
    missing = nbx("quarantine", "show", "--config", str(configs["CH"]), "5")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "nbx: error: nbx.quarantine.CH: no record at partition 0 offset 5"
    )
    for extra in (["--reason", "replay"], ["--since", "2999-01-01"]):
        none = nbx("quarantine", "list", "--config", str(configs["CH"]), *extra)
        assert (
            none.stdout.strip() == "nbx.quarantine.CH: no quarantined records matching the filters"
        )
    empty = nbx("quarantine", "list", "--config", str(configs["FR"]))
    assert empty.stdout.strip() == "nbx.quarantine.FR: no quarantined records"

    consume(configs["XI"])
    answered = status_lines(configs["XI"])
    assert "CH  publish  sent     rejected (declined-by-policy)" in answered
    assert "FR  publish  sent     delivered" in answered
    assert not any(line.startswith("note:") for line in answered)

    cancel = nbx("cancel", "--config", str(configs["XI"]), NOTICE, "--notice-type", "un",
                 "--reason", "delisted")  # fmt: skip
    assert cancel.returncode == 0, cancel.stderr
    consume_together(configs["CH"], configs["FR"])
    consume(configs["XI"])
    status = json.loads(nbx("status", "--config", str(configs["XI"]), NOTICE, "--json").stdout)
    cancels = {
        r["recipient"]: [(x["status"], x["reason"]) for x in m["receipts"]]
        for r in status["recipients"]
        for m in r["messages"]
        if m["kind"] == "cancel"
    }
    assert cancels == {"CH": [("purged", None)], "FR": [("purged", None)]}
    again = json.loads(nbx("quarantine", "list", "--config", str(configs["CH"]), "--json").stdout)
    assert len(again["records"]) == 1
