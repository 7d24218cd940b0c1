"""`nbx policy explain` shows the sender restrictions applied and, beside each recipient's
outbound view, its inbound decision (issue 20, point 3): a notice the recipient's own policy
declines is not reported as simply allowed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from broker.cli import main
from broker.examples import notices_dir

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "policies"
UN = str(notices_dir() / "un.json")
RED = str(notices_dir() / "red.json")


def _explain(*args: str) -> str:
    result = CliRunner().invoke(main, ["policy", "explain", *args])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_a_declined_notice_shows_the_declining_rule() -> None:
    """CH declines UN notices (ch-decline-un): explain says so, with the rule and its reason,
    in the table, in words and in --json; FR (no inbound rule matching) accepts it."""
    out = _explain("--policies", str(DEPLOY), "--to", "CH,FR", UN)
    row = next(line for line in out.splitlines() if line.startswith("(inbound)"))
    assert row.split() == ["(inbound)", "declined-by-policy", "ch-decline-un", "delivered"]
    assert (
        "CH inbound (its policy): declines it by rule ch-decline-un (In this example UN special "
        "notices are handled by the national sanctions authority, outside NBX.): quarantined "
        "there, never stored; the sender's status shows rejected (declined-by-policy)"
    ) in out.splitlines()
    assert "FR inbound (its policy): accepts it (no inbound rule matches)" in out.splitlines()
    data = json.loads(_explain("--policies", str(DEPLOY), "--to", "CH", UN, "--json"))
    assert data["allowed"] is True  # the sender may send it: the recipient refuses it
    assert data["inbound"] == {
        "policy": data["policy"],
        "own_file": True,
        "decision": "declined-by-policy",
        "rule": "ch-decline-un",
        "reason": "In this example UN special notices are handled by the national sanctions "
        "authority, outside NBX.",
    }


def test_a_review_demand_and_the_default_file_are_shown(tmp_path: Path) -> None:
    """A recipient's [[inbound.require_review]] rule gives pending-review; a recipient without
    its own file is judged by default.toml, and explain says that it is."""
    folder = tmp_path / "policies"
    shutil.copytree(DEPLOY, folder)
    fr = folder / "FR.toml"
    fr.write_text(
        fr.read_text()
        + '\n[[inbound.require_review]]\nid = "fr-review-it-red"\nreason = "checked first"\n'
        'sender = "IT"\nnotice_type = "red"\n'
    )
    data = json.loads(_explain("--policies", str(folder), "--to", "FR,PT", RED, "--json"))
    assert [d["inbound"]["decision"] for d in data] == ["pending-review", "delivered"]
    assert data[0]["inbound"]["rule"] == "fr-review-it-red"
    assert data[1]["inbound"]["own_file"] is False
    assert data[1]["inbound"]["policy"].startswith("default@")
    out = _explain("--policies", str(folder), "--to", "FR,PT", RED).splitlines()
    assert (
        "FR inbound (its policy): holds it for review by rule fr-review-it-red (checked first): "
        "not actionable until a reviewer approves"
    ) in out
    assert "PT inbound (default.toml, no PT.toml here): accepts it (no inbound rule matches)" in out


def test_sender_restrictions_are_shown_and_an_excluded_recipient_has_no_inbound() -> None:
    """The restrictions applied are under the notice's header and in --json; a recipient they
    exclude receives nothing, so it has no inbound decision."""
    args = ["--policies", str(DEPLOY), "--to", "FR,DE", "--exclude", "DE", "--handling", "H2"]
    out = _explain(*args, RED)
    assert "sender restrictions: exclude DE; handling H2" in out.splitlines()[:4]
    data = json.loads(_explain(*args, RED, "--json"))
    assert [d["sender_restrictions"] for d in data] == [
        {"only": None, "exclude": ["DE"], "handling": "H2"}
    ] * 2
    assert data[1]["allowed"] is False
    assert data[1]["inbound"] is None
    plain = _explain("--policies", str(DEPLOY), "--to", "FR", RED)
    assert "sender restrictions: none" in plain.splitlines()[:4]
