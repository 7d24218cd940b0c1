"""`nbx policy check` and `nbx policy explain`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from broker.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = str(ROOT / "deploy" / "policies")
RED = str(ROOT / "examples" / "notices" / "red.json")
CASES = ROOT / "tests" / "policy_cases"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_accepts_the_example_policies() -> None:
    """Every example file is reported ok with its policy id."""
    code, out, _ = _run("policy", "check", DEPLOY)
    assert code == 0, out
    assert "FR@" in out
    assert "default@" in out


def test_check_names_file_line_and_rule() -> None:
    """Bad policies fail with each problem naming the file, the line and the rule."""
    for case, expected in [
        ("bad-unknown-key", "FR.toml:14: rule 'fr-typo': unknown key 'paths'"),
        ("bad-pattern", "FR.toml:8: rule 'fr-bad': path: bad pattern 'person..family_name'"),
        ("bad-duplicate-id", "FR.toml:10: rule 'fr-x': duplicate rule id"),
    ]:
        code, _, err = _run("policy", "check", str(CASES / case / "policies"))
        assert code == 1
        assert expected in err, err
        assert "Traceback" not in err


def test_explain_json_single_recipient() -> None:
    """--json with one --to prints the documented object."""
    code, out, _ = _run("policy", "explain", "--policies", DEPLOY, "--to", "de", RED, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["recipient"] == "DE"
    assert data["policy"].startswith("DE@")
    assert {
        "path": "person.biometrics.photos",
        "rule": "de-no-biometrics",
        "manifest": "de-no-biometrics",
    } in data["withheld"]
    assert "person.family_name" in data["disclosed"]


def test_explain_several_recipients_side_by_side() -> None:
    """--to accepts several countries (repeated or comma-separated): one column each."""
    code, out, _ = _run(
        "policy", "explain", "--policies", DEPLOY, "--to", "FR,DE", "--to", "PT", RED
    )
    assert code == 0, out
    header = next(line for line in out.splitlines() if line.startswith("field"))
    assert header.split()[-3:] == ["FR", "DE", "PT"]
    photos = next(line for line in out.splitlines() if line.startswith("person.biometrics.photos"))
    assert "fr-biometrics" in photos
    assert "de-no-biometrics" in photos
    assert "default-deny-biometric" in photos  # PT falls back to default.toml
    code, out, _ = _run("policy", "explain", "--policies", DEPLOY, "--to", "FR,DE", RED, "--json")
    assert [d["recipient"] for d in json.loads(out)] == ["FR", "DE"]


def test_explain_with_sender_restrictions() -> None:
    """--exclude and --handling apply before the recipient's policy."""
    code, out, _ = _run(
        "policy",
        "explain",
        "--policies",
        DEPLOY,
        "--to",
        "FR,US",
        "--exclude",
        "FR",
        "--handling",
        "H2",
        RED,
    )
    assert code == 0, out
    assert "not sent: excluded-by-sender" in out
    assert "handling H2," in out.splitlines()[0]  # the sender's code replaces the notice's H1


def test_explain_bad_notice_is_one_line(tmp_path: Path) -> None:
    """An invalid notice file gives one line naming the file, no traceback."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"notice_type": "red"}')
    code, _, err = _run("policy", "explain", "--policies", DEPLOY, "--to", "FR", str(bad))
    assert code == 1
    assert err.startswith(f"nbx: error: {bad}: invalid notice")
    assert len(err.strip().splitlines()) == 1


def test_explain_shows_roles_ages_and_the_day_judged_at(tmp_path: Path) -> None:
    """The header names the evaluation codes, the subject's role, whether it is a minor, on which
    day (here the offence's) and what protection follows; then each related person's."""
    notice = json.loads(Path(RED).read_text())
    notice["person"]["date_of_birth"] = "2005-03-01"
    for charge in notice["judicial"]["charges"]:
        charge["committed_on"] = "2021-06"
    notice["related_persons"] = [
        {"role": "victim", "family_name": "VERDI", "date_of_birth": "1990-05-05"},
        {"role": "witness", "family_name": "BIANCHI", "date_of_birth": "2010-05-05"},
    ]
    path = tmp_path / "notice.json"
    path.write_text(json.dumps(notice))
    args = ("policy", "explain", "--policies", DEPLOY, "--to", "DE", "--today", "2025-06-01")
    code, out, err = _run(*args, str(path))
    assert code == 0, err
    assert out.splitlines()[:4] == [
        f"notice {notice['notice_id']}: red from IT, handling H1, reliability "
        f"{notice['source_reliability']}, accuracy {notice['information_accuracy']}",
        "subject: suspect, minor: yes (at the offence, 2021-06-01; protected role: free text "
        "protected too)",
        "related person 1: victim, minor: no (today, 2025-06-01)",
        "related person 2: witness, minor: yes (today, 2025-06-01; protected role: free text "
        "protected too)",
    ]
    adult = json.loads(Path(RED).read_text())
    for charge in adult["judicial"]["charges"]:
        charge.pop("committed_on", None)
    path.write_text(json.dumps(adult))
    code, out, _ = _run(*args, str(path))
    assert out.splitlines()[1] == "subject: suspect, minor: no (today, 2025-06-01)"
