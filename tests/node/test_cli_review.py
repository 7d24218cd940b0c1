"""`nbx review` and `nbx oversight` end to end on the real broker: a reviewer lists, screens and
approves a red notice, the recipients' states follow; the oversight body blocks it; commands on a
node without the role, or about an unknown notice, fail with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

from broker import devbroker
from broker.examples import notices_dir, policies_dir
from broker.node.provision import provision
from tests.node.test_cli_node import consume_together
from tests.node.test_cli_node import nbx_in_process as nbx

ROLES = {"XR": ["reviewer"], "XO": ["oversight"]}


def _one_line(out: object) -> str:
    stderr = getattr(out, "stderr", "")
    lines = [line for line in str(stderr).splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def _states(config: Path) -> dict[str, str]:
    listed = nbx("inbox", "list", "--config", str(config), "--json")
    assert listed.returncode == 0, listed.stderr
    return {r["notice_id"]: r["state"] for r in json.loads(listed.stdout)}


def _consume(config: Path) -> None:
    run = nbx("consume", "--config", str(config), "--until-idle", "2")
    assert run.returncode == 0, run.stderr


def test_review_and_oversight_commands(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """IT publishes the red notice to FR and XR: both hold it pending-review; `nbx review list`
    and `show` at XR name it (with its statement hash and audience); `review approve` makes it
    actionable at FR; `oversight block` by XO (not a recipient: sender, type and audience given)
    blocks it at FR; the wrong node or an unknown notice gets one error line."""
    configs = provision(
        tmp_path,
        ["IT", "FR", "XR", "XO"],
        bootstrap=fresh_broker.bootstrap,
        policies=policies_dir(),
        enable_idempotence=idempotence_supported,
        session_timeout_ms=6000,
        roles=ROLES,
    )
    red = notices_dir() / "red.json"
    out = nbx("publish", "--config", str(configs["IT"]), str(red), "--to", "FR,XR", "--json")
    assert out.returncode == 0, out.stderr
    consume_together(configs["FR"], configs["XR"])
    for cc in ("FR", "XR"):
        assert _states(configs[cc]) == {"IT-2025-0001": "pending-review"}

    listed = nbx("review", "list", "--config", str(configs["XR"]))
    assert listed.stdout.splitlines() == ["IT-2025-0001  red  from IT  v1  H1 B2"]
    shown = nbx("review", "show", "--config", str(configs["XR"]), "IT-2025-0001", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["audience"] == ["FR", "XR"]
    assert report["state"] == "pending-review"
    assert report["statement_hash"]
    assert isinstance(report["flags"], list)
    assert (report["handling"], report["source_reliability"], report["information_accuracy"]) == (
        "H1",
        "B",
        2,
    )
    plain = nbx("review", "show", "--config", str(configs["XR"]), "IT-2025-0001")
    assert (
        "handling: H1: not to be used in judicial proceedings without the provider's "
        in plain.stdout
    )

    wrong = nbx("review", "approve", "--config", str(configs["FR"]), "IT-2025-0001",
                "--reason", "ok")  # fmt: skip
    assert wrong.returncode == 1
    assert (
        _one_line(wrong) == "nbx: error: FR is not a reviewer in the directory (its roles: member)"
    )
    unknown = nbx("review", "approve", "--config", str(configs["XR"]), "IT-2099-0001",
                  "--reason", "ok")  # fmt: skip
    assert _one_line(unknown) == (
        "nbx: error: IT-2099-0001: no such notice in this node's store (nbx inbox list)"
    )
    no_ground = nbx("review", "refuse", "--config", str(configs["XR"]), "IT-2025-0001",
                    "--reason", "no")  # fmt: skip
    assert no_ground.returncode == 2
    assert _one_line(no_ground) == (
        "nbx: error: --ground: required (see 'nbx review refuse --help')"
    )

    approved = nbx("review", "approve", "--config", str(configs["XR"]), "IT-2025-0001",
                   "--reason", "meets the criteria", "--json")  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    sent = {r["recipient"]: r["status"] for r in json.loads(approved.stdout)["recipients"]}
    assert sent == {"FR": "sent", "IT": "sent", "XR": "sent"}  # XR's own copy too
    consume_together(configs["FR"], configs["XR"])
    for cc in ("FR", "XR"):
        assert _states(configs[cc]) == {"IT-2025-0001": "actionable"}

    not_here = nbx("oversight", "block", "--config", str(configs["XO"]), "IT-2025-0001",
                   "--case", "CCF-1", "--reason", "challenge pending")  # fmt: skip
    assert _one_line(not_here) == (
        "nbx: error: IT-2025-0001: not in this node's store; give --sender, --notice-type and --to"
    )
    blocked = nbx("oversight", "block", "--config", str(configs["XO"]), "IT-2025-0001",
                  "--case", "CCF-1", "--reason", "challenge pending", "--sender", "IT",
                  "--notice-type", "red", "--to", "FR,XR")  # fmt: skip
    assert blocked.returncode == 0, blocked.stderr
    _consume(configs["FR"])
    assert _states(configs["FR"]) == {"IT-2025-0001": "blocked"}

    # the sender's daemon collects the receipts, the attestation and the block: nbx status
    _consume(configs["IT"])
    status = nbx("status", "--config", str(configs["IT"]), "IT-2025-0001", "--json")
    assert status.returncode == 0, status.stderr
    report_it = json.loads(status.stdout)
    assert {r["recipient"]: r["state"] for r in report_it["recipients"]} == {
        "FR": "blocked",
        "XR": "blocked",
    }
    decisions = report_it["decisions"]
    assert [(d["by"], d["kind"], d["decision"], d["case_ref"]) for d in decisions] == [
        ("XR", "review", "approved", None),
        ("XO", "block", None, "CCF-1"),
    ]
    assert decisions[0]["statement_hash"] == report["statement_hash"]
    text = nbx("status", "--config", str(configs["IT"]), "IT-2025-0001").stdout.splitlines()
    assert [line.split()[:2] for line in text[-2:]] == [["XR", "approved"], ["XO", "block"]]
