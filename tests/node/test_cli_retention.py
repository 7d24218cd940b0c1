"""`nbx inbox list --expiring`, `nbx status --overdue`, `nbx status NOTICE` (confirmed /
awaiting / overdue) and `nbx erasure --erase-by / --resend-overdue` end to end on the real broker;
bad input fails with one clear line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker import devbroker
from broker.examples import notices_dir, policies_dir
from broker.node.provision import provision
from tests.node.test_cli_node import consume_together
from tests.node.test_cli_node import nbx_in_process as nbx
from tests.node.test_cli_review import _consume, _one_line

NOTICE = "IT-2025-0001"


def _overdue(config: Path) -> list[tuple[str, str]]:
    out = nbx("status", "--overdue", "--config", str(config), "--json")
    assert out.returncode == 0, out.stderr
    return [(r["recipient"], r["kind"]) for r in json.loads(out.stdout)]


def _proofs(config: Path) -> dict[str, list[str | None]]:
    """Per recipient: the erasure proof of each message sent (None for non-purging ones)."""
    out = nbx("status", NOTICE, "--config", str(config), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    return {r["recipient"]: [m["erasure"] for m in r["messages"]] for r in report["recipients"]}


def test_expiring_overdue_and_resend_commands(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """IT publishes the red notice to FR and DE; FR lists it as expiring within 300 weeks (its
    retain_until: five years from its created_at), not within 30 days. IT orders its erasure
    with an erase_by already past; only FR's daemon runs: FR confirms, DE is overdue
    (`nbx status --overdue`, `nbx status NOTICE`); `nbx erasure --resend-overdue` sends the
    order again to DE only; DE's daemon purges and confirms; nothing is overdue any more."""
    configs = provision(
        tmp_path,
        ["IT", "FR", "DE"],
        bootstrap=fresh_broker.bootstrap,
        policies=policies_dir(),
        enable_idempotence=idempotence_supported,
        session_timeout_ms=6000,
    )
    red = notices_dir() / "red.json"
    out = nbx("publish", "--config", str(configs["IT"]), str(red), "--to", "FR,DE")
    assert out.returncode == 0, out.stderr
    consume_together(configs["FR"], configs["DE"])
    soon = nbx("inbox", "list", "--config", str(configs["FR"]), "--expiring", "30d")
    assert (soon.returncode, soon.stdout) == (0, "")
    later = nbx("inbox", "list", "--config", str(configs["FR"]), "--expiring", "300w", "--json")
    assert later.returncode == 0, later.stderr
    rows = json.loads(later.stdout)
    assert [(r["notice_id"], r["retain_until"]) for r in rows] == [
        (NOTICE, "2030-02-28T09:00:00.000+00:00")
    ]
    bad = nbx("inbox", "list", "--config", str(configs["FR"]), "--expiring", "3m")
    assert bad.returncode == 1
    assert _one_line(bad) == (
        "nbx: error: --expiring: '3m': expected a positive duration like 30d, 12h or 2w"
    )
    wrong = nbx("erasure", "--config", str(configs["IT"]), NOTICE, "--reason", "court order",
                "--erase-by", "tomorrow")  # fmt: skip
    assert wrong.returncode == 1
    assert _one_line(wrong).startswith("nbx: error: --erase-by: expected an ISO 8601 time")

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    order = nbx("erasure", "--config", str(configs["IT"]), NOTICE, "--reason", "court order",
                "--erase-by", past, "--json")  # fmt: skip
    assert order.returncode == 0, order.stderr
    first = json.loads(order.stdout)["msg_id"]
    _consume(configs["FR"])  # DE's daemon is not running
    _consume(configs["IT"])  # the receipts
    assert _overdue(configs["IT"]) == [("DE", "erasure")]
    assert _proofs(configs["IT"]) == {"DE": [None, "overdue"], "FR": [None, "confirmed"]}
    table = nbx("status", "--overdue", "--config", str(configs["IT"]))
    assert table.stdout.splitlines()[1].split()[:3] == [NOTICE, "DE", "erasure"]
    assert table.stdout.splitlines()[1].split()[-1] == first

    resent = nbx("erasure", "--resend-overdue", "--config", str(configs["IT"]), "--json")
    assert resent.returncode == 0, resent.stderr
    (again,) = json.loads(resent.stdout)
    assert again["msg_id"] != first
    assert (again["kind"], again["notice_id"]) == ("erasure", NOTICE)
    assert [(r["recipient"], r["status"]) for r in again["recipients"]] == [("DE", "sent")]
    _consume(configs["DE"])
    _consume(configs["IT"])
    assert _overdue(configs["IT"]) == []
    assert _proofs(configs["IT"]) == {
        "DE": [None, "confirmed", "confirmed"],
        "FR": [None, "confirmed"],
    }
    done = nbx("status", "--overdue", "--config", str(configs["IT"]))
    assert done.stdout == "no overdue purge confirmations\n"
    shown = nbx(
        "inbox", "show", "--config", str(configs["DE"]), NOTICE, "--purpose", "check", "--json"
    )
    assert json.loads(shown.stdout)["view"] is None


def test_bad_retention_settings_are_one_line_errors(tmp_path: Path) -> None:
    """A bad `[retention]` value in node.toml stops any command with one line naming it."""
    path = provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1")["FR"]
    base = path.read_text()
    for extra, error in [
        ('confirm_within = "3m"',
         "retention.confirm_within: Value error, '3m': expected a positive duration like 30d, "
         "12h or 2w"),
        ("warn_days = -1", "retention.warn_days: Input should be greater than or equal to 0"),
    ]:  # fmt: skip
        path.write_text(f"{base}\n[retention]\n{extra}\n")
        out = nbx("status", "--overdue", "--config", str(path))
        assert out.returncode == 1
        assert _one_line(out) == f"nbx: error: {path}: {error}"
    path.write_text(f'{base}\n[retention]\nconfirm_within = "1h"\nwarn_days = 7\n')
    out = nbx("status", "--overdue", "--config", str(path))
    assert (out.returncode, out.stdout) == (0, "no overdue purge confirmations\n")
