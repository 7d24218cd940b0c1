"""Every `--json` output of `nbx` has a JSON Schema in schemas/cli/ (one file per command, named
after its words: `inbox-show.json`), the concepts several commands print (a withheld field, a
recipient's outcome, a receipt) are defined once in `defs.json`, and each command's output on
real data validates against its schema (issue 20, point 7)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from broker import devbroker
from broker.cli import main
from broker.examples import notices_dir, policies_dir
from broker.node.provision import provision
from tests.cli.test_errors import LEAVES, _command
from tests.node.test_cli_node import consume_together

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas" / "cli"
#: the base of every schema's ``$id``; ``defs.json`` is referenced relative to it
BASE = "https://schemas.nbx.example/cli/"
#: commands whose output is validated by another test (a whole demo run: tests/foundation)
ELSEWHERE = {
    "demo",  # tests/foundation/test_demo.py
    "quarantine-show",  # a quarantined record: tests/quarantine/test_cli_quarantine.py
}


#: every command with --json, by its schema's name
JSON_COMMANDS = {
    "-".join(words) for words in LEAVES if any(p.name == "as_json" for p in _command(words).params)
}


def _registry() -> Registry[Any]:
    resources = [
        (BASE + path.name, Resource.from_contents(json.loads(path.read_text())))
        for path in SCHEMAS.glob("*.json")
    ]
    return Registry().with_resources(resources)


def validate(name: str, data: Any) -> None:
    """Check ``data``, the --json output of the command ``name``, against its schema (and, with
    NBX_DUMP_JSON=DIR, keep it in DIR for writing schemas)."""
    dump = os.environ.get("NBX_DUMP_JSON")
    if dump:
        Path(dump).mkdir(exist_ok=True)
        Path(dump, f"{name}.{len(list(Path(dump).glob(name + '.*')))}.json").write_text(
            json.dumps(data, indent=2)
        )
        if not (SCHEMAS / f"{name}.json").exists():
            return
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    Draft202012Validator(schema, registry=_registry()).validate(data)


def test_every_json_command_has_a_schema_and_every_schema_a_command() -> None:
    """One schema per `--json` command, no schema without a command (besides defs.json)."""
    files = {p.stem for p in SCHEMAS.glob("*.json")} - {"defs"}
    assert sorted(JSON_COMMANDS - files) == [], "commands without a schema"
    assert sorted(files - JSON_COMMANDS) == [], "schemas without a command"


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.stem)
def test_each_schema_is_a_valid_schema_with_its_id(path: Path) -> None:
    """Each file is a valid draft 2020-12 schema whose $id is its own name under BASE."""
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == BASE + path.name
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_a_withheld_field_has_one_shape() -> None:
    """`{"path", "rule"}` is the withheld field wherever it is printed: the schemas of `inbox
    show` and `policy explain` both refer to defs.json's definition."""
    for name in ("inbox-show", "policy-explain"):
        assert '"defs.json#/$defs/withheld"' in (SCHEMAS / f"{name}.json").read_text(), name
    withheld = json.loads((SCHEMAS / "defs.json").read_text())["$defs"]["withheld"]
    assert withheld["required"] == ["path", "rule"]


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_policy_explain_validates() -> None:
    """One recipient (an object) and several (a list), with restrictions and an inbound
    decline."""
    un = str(notices_dir() / "un.json")
    args = ("policy", "explain", "--policies", str(policies_dir()), "--json")
    validate("policy-explain", _cli(*args, "--to", "CH", un))
    validate("policy-explain", _cli(*args, "--to", "CH,FR,PT", "--exclude", "PT", un))


def _json(name: str, *args: str) -> Any:
    data = _cli(*args, "--json")
    validate(name, data)
    return data


def _consume(config: Path) -> None:
    run = CliRunner().invoke(main, ["consume", "--config", str(config), "--until-idle", "2"])
    assert run.exit_code == 0, run.stderr


def test_every_json_output_validates_on_a_real_network(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """IT publishes a red notice to FR, DE and the reviewer XR; each command with --json runs on
    what follows (consume, inbox, review, screening, respond, status, oversight, suspend,
    erasure, cancel, refuse, delete, audit, report, subject lookup, keys, bench) and its output
    validates; every --json command is run here (or, for the demo, in tests/foundation)."""
    configs = provision(
        tmp_path,
        ["IT", "FR", "DE", "XR", "XO"],
        bootstrap=fresh_broker.bootstrap,
        policies=policies_dir(),
        enable_idempotence=idempotence_supported,
        session_timeout_ms=6000,
        roles={"XR": ["reviewer"], "XO": ["oversight"]},
    )
    it, fr, de, xr, xo = (str(configs[cc]) for cc in ("IT", "FR", "DE", "XR", "XO"))
    red = notices_dir() / "red.json"
    ran = {"policy-explain"}

    def run(name: str, *args: str) -> Any:
        ran.add(name)
        return _json(name, *args)

    sent = run("publish", "publish", "--config", it, str(red), "--to", "FR,DE,XR")
    assert {r["status"] for r in sent["recipients"]} == {"sent"}
    consume_together(Path(fr), Path(de), Path(xr))
    notice = "IT-2025-0001"
    assert [r["notice_id"] for r in run("inbox-list", "inbox", "list", "--config", fr)] == [notice]
    shown = run("inbox-show", "inbox", "show", "--config", de, notice, "--purpose", "t")
    assert {"path": "person.biometrics.photos", "rule": "de-no-biometrics"} in shown["withheld"]
    run("review-list", "review", "list", "--config", xr)
    run("review-show", "review", "show", "--config", xr, notice)
    run("screening-check", "screening", "check", "--config", xr, str(red))
    run("review-approve", "review", "approve", "--config", xr, notice, "--reason", "ok")
    _consume(Path(fr))
    run("respond", "respond", "--config", fr, notice, "--kind", "located", "--note", "Lyon")
    _consume(Path(it))
    status = run("status", "status", "--config", it, notice)
    assert status["recipients"][0]["messages"][0]["receipts"]
    run("status", "status", "--config", it, "--overdue")
    case = ("--case", "CCF-1", "--sender", "IT", "--notice-type", "red", "--to", "FR")
    run("oversight-block", "oversight", "block", "--config", xo, notice, *case, "--reason", "c")
    run("oversight-unblock", "oversight", "unblock", "--config", xo, notice, *case)
    run("suspend", "suspend", "--config", it, notice, "--reason", "checking")
    run("erasure", "erasure", "--config", it, notice, "--reason", "court", "--to", "DE")
    run("erasure", "erasure", "--config", it, "--resend-overdue")
    run("cancel", "cancel", "--config", it, notice, "--reason", "arrested")

    other = json.loads(red.read_text()) | {"notice_id": "IT-2025-0002"}
    second = tmp_path / "second.json"
    second.write_text(json.dumps(other))
    run("publish", "publish", "--config", it, str(second), "--to", "XR")
    _consume(Path(xr))
    args = ("--ground", "criteria", "--reason", "no")
    run("review-refuse", "review", "refuse", "--config", xr, "IT-2025-0002", *args)
    run("oversight-delete", "oversight", "delete", "--config", xo, "IT-2025-0002",
        "--case", "CCF-2", "--reason", "unlawful", "--sender", "IT", "--notice-type", "red",
        "--to", "XR")  # fmt: skip

    run("quarantine-list", "quarantine", "list", "--config", fr)
    run("audit-verify", "audit", "verify", "--config", fr)
    run("audit-export", "audit", "export", "--config", fr)
    run("report", "report", "--config", it)
    run("subject-lookup", "subject", "lookup", "--config", de, "--family-name", "ROSSETTI",
        "--purpose", "SAR-1")  # fmt: skip
    run("keys-status", "keys", "status", "--config", it)
    bench = ("--bootstrap", fresh_broker.bootstrap, "--messages", "4", "--repeats", "1",
             "--warmup", "1", "--concurrency", "1", "--no-idempotence")  # fmt: skip
    report = run("bench-all", "bench", "all", *bench, "--recipients", "2", "--notices", "1",
                 "--hosts", "1", "--no-review")  # fmt: skip
    assert all(report[part] is not None for part in ("raw", "secure", "broadcast", "ops"))
    ran |= {"bench-raw", "bench-raw+store", "bench-secure", "bench-broadcast", "bench-ops"}
    assert sorted(JSON_COMMANDS - ran - ELSEWHERE) == []
