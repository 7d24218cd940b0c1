"""schemas/asyncapi.yaml: valid for the official AsyncAPI parser, and true to the code.

The parser is ``@asyncapi/parser`` from the npm registry, pinned in tools/asyncapi/package.json
and package-lock.json and installed by ``make asyncapi`` (``npm ci``; ``make setup`` and
``make test`` run it). Without it the parser's test is skipped, or fails when
``NBX_REQUIRE_ASYNCAPI`` is set (``make test``). That schemas/asyncapi.yaml is what
``nbx schema export`` writes today is checked by tests/schemas/test_export.py.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from broker.cli import main
from broker.keys.directory import DIRECTORY_FORMAT
from broker.keys.directory_topic import DIRECTORY_KEY
from broker.node import publisher, quarantine
from broker.schemas import asyncapi
from broker.schemas.export import render_schemas
from broker.transport import KafkaSettings, topics
from broker.transport.admin import topic_config
from broker.vocab import Reason

from .conftest import ROOT

TOOL = ROOT / "tools" / "asyncapi"
SCRIPT = TOOL / "validate.mjs"
PARSER = TOOL / "node_modules" / "@asyncapi" / "parser" / "package.json"
#: set by the Makefile: a missing parser fails the run instead of skipping its test
REQUIRE_ENV = "NBX_REQUIRE_ASYNCAPI"
COMMITTED = ROOT / "schemas" / asyncapi.FILE_NAME
#: severity 0 of the parser's diagnostics (Spectral's DiagnosticSeverity.Error)
ERROR = 0


def node() -> str:
    """The node binary with the installed parser, or skip (fail when it is required)."""
    binary = shutil.which("node")
    if binary is not None and PARSER.exists():
        return binary
    reason = "node or @asyncapi/parser is missing: run `make asyncapi`"
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set)")
    pytest.skip(reason)


@functools.cache
def rendered() -> dict[str, str]:
    """What ``nbx schema export`` writes (rendered once for this module)."""
    return render_schemas()


def document() -> dict[str, Any]:
    """The exported document, as YAML parses it."""
    loaded: dict[str, Any] = yaml.safe_load(rendered()[asyncapi.FILE_NAME])
    return loaded


def broken_copies(folder: Path) -> dict[str, Path]:
    """The exported files in ``folder``, and two copies of the document each broken one way:
    a payload schema file that does not exist (the parser stops at a reference it cannot
    resolve), an operation with an action AsyncAPI 3 does not know."""
    for name, text in rendered().items():
        (folder / name).write_text(text, encoding="utf-8")
    text = (folder / asyncapi.FILE_NAME).read_text(encoding="utf-8")
    breaks = {
        "missing-file": ("./lifecycle.cancel.json", "./lifecycle.nothing.json"),
        "bad-action": ("action: receive", "action: subscribe"),
    }
    out = {}
    for name, (old, new) in breaks.items():
        assert old in text, old
        path = folder / f"broken-{name}.yaml"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        out[name] = path
    return out


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """One run of the official parser over the committed document and the broken copies:
    ``{file: [diagnostic or summary lines]}``."""
    binary = node()
    folder = tmp_path_factory.mktemp("asyncapi")
    files = [COMMITTED, *broken_copies(folder).values()]
    done = subprocess.run(
        [binary, str(SCRIPT), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=TOOL,
    )
    assert done.returncode == 1, done.stderr[-2000:]  # the broken copies fail
    out: dict[str, list[dict[str, Any]]] = {str(f): [] for f in files}
    for line in done.stdout.splitlines():
        row = json.loads(line)
        out[row["file"]].append(row)
    return out


def _errors(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("severity") == ERROR]


@pytest.mark.process  # runs node: `make quick` leaves it out
def test_the_official_parser_accepts_the_document(
    verdicts: dict[str, list[dict[str, Any]]],
) -> None:
    """@asyncapi/parser parses schemas/asyncapi.yaml (resolving the JSON Schema files its
    payloads reference) with no diagnostic of severity error."""
    rows = verdicts[str(COMMITTED)]
    assert _errors(rows) == []
    assert rows[-1] == {"file": str(COMMITTED), "errors": 0, "parsed": True}


@pytest.mark.process  # runs node: `make quick` leaves it out
def test_the_parser_reports_each_broken_copy(verdicts: dict[str, list[dict[str, Any]]]) -> None:
    """The same run fails each broken copy with an error at the broken place: the check can
    fail, it resolves the JSON Schema files, and it validates against AsyncAPI 3."""
    found = {
        Path(file).stem.removeprefix("broken-"): [
            (r["code"], "/".join(r["path"])) for r in _errors(rows)
        ]
        for file, rows in verdicts.items()
        if file != str(COMMITTED)
    }
    assert found["missing-file"] == [
        ("invalid-ref", "components/schemas/lifecycle.cancel/schema/$ref")
    ]
    assert [path for _, path in found["bad-action"]] == ["operations/receivePackages/action"]


def test_every_topic_is_a_channel_with_its_configuration() -> None:
    """Each topic function of broker.transport.topics (and nbx.directory) is a channel whose
    address, filled with a bureau, is the topic's name, and whose Kafka binding carries the
    configuration NBX creates the topic with (broker.transport.admin.topic_config)."""
    channels = document()["channels"]
    makers = {
        name: fn
        for name, fn in inspect.getmembers(topics, inspect.isfunction)
        if fn.__module__ == topics.__name__ and not name.startswith("_") and name != "group"
    }
    assert set(channels) == {*makers, "directory"}
    settings = KafkaSettings(bootstrap=asyncapi.DEVELOPMENT_BOOTSTRAP)
    for name, channel in channels.items():
        (param,) = channel.get("parameters", {None: None})
        topic = topics.DIRECTORY_TOPIC if param is None else makers[name]("DE")
        assert channel["address"].replace(f"{{{param}}}", "DE") == topic
        binding = channel["bindings"]["kafka"]
        config = {
            k: ",".join(v) if isinstance(v, list) else str(v)
            for k, v in binding["topicConfiguration"].items()
        }
        assert config == topic_config(topic, settings.topic_retention_ms), name
        assert binding["partitions"] == (1 if name == "directory" else settings.topic_partitions)
        assert binding["replicas"] == settings.topic_replication
    assert channels["directory"]["bindings"]["kafka"]["topicConfiguration"] == {
        "cleanup.policy": ["compact"]
    }


def test_headers_and_keys_are_those_the_code_writes() -> None:
    """The header names, the directory's record key and format, and the quarantine's reason
    codes in the document are the constants of the modules that write them."""
    messages = document()["components"]["messages"]
    assert set(messages["package"]["headers"]["required"]) == {
        publisher.FORMAT_HEADER,
        publisher.KID_HEADER,
    }
    held = messages["held"]["headers"]["required"]
    assert {topics.HOLD_HEADER, topics.HOLD_TO_HEADER} <= set(held)
    reason = messages["quarantined"]["headers"]["properties"][quarantine.REASON_HEADER]
    assert reason["enum"] == [r.value for r in Reason]
    assert set(messages["quarantined"]["headers"]["properties"]) == {
        quarantine.REASON_HEADER,
        quarantine.SOURCE_HEADER,
        quarantine.TRUNCATED_HEADER,
        quarantine.DROPPED_HEADER,
    }
    assert DIRECTORY_KEY.decode() == asyncapi.DIRECTORY_KEY
    directory = messages["directory"]["payload"]["properties"]["directory"]
    assert directory["properties"]["format"]["const"] == DIRECTORY_FORMAT


def test_payloads_reference_every_json_schema() -> None:
    """Every exported JSON Schema but the per-type ones (notice.json is their union) is a
    component schema in JSON Schema format, referenced by a message's sealed content."""
    doc = document()
    files = [n for n in rendered() if n.endswith(".json")]
    wanted = {n.removesuffix(".json") for n in files if n == "notice.json" or "lifecycle." in n}
    schemas = doc["components"]["schemas"]
    assert set(schemas) == wanted
    for key, schema in schemas.items():
        assert schema == {
            "schemaFormat": asyncapi.JSON_SCHEMA_FORMAT,
            "schema": {"$ref": f"./{key}.json"},
        }
    referenced = set()
    for message in doc["components"]["messages"].values():
        sealed = message["payload"].get("x-nbx-sealed", {})
        for ref in [sealed, *sealed.get("oneOf", [])]:
            if "$ref" in ref:
                referenced.add(ref["$ref"].removeprefix("#/components/schemas/"))
    assert referenced == wanted


def test_operations_follow_the_roles() -> None:
    """Every channel is written and read; only the anchor writes the directory and only it
    holds no other operation; the consuming operations name the bureau's own group."""
    ops = document()["operations"]
    by_channel: dict[str, set[str]] = {}
    for op in ops.values():
        channel = op["channel"]["$ref"].removeprefix("#/channels/")
        by_channel.setdefault(channel, set()).add(op["action"])
        for message in op["messages"]:
            assert message["$ref"].startswith(f"#/channels/{channel}/messages/")
    assert all(actions == {"send", "receive"} for actions in by_channel.values()), by_channel
    writers = [
        {t["name"] for t in op["tags"]}
        for op in ops.values()
        if op["action"] == "send" and op["channel"]["$ref"] == "#/channels/directory"
    ]
    assert writers == [{"anchor"}]
    assert [n for n, op in ops.items() if "anchor" in {t["name"] for t in op["tags"]}] == [
        "publishDirectory"
    ]
    for name in ("receivePackages", "receiveReceipts", "receiveHeld"):
        pattern = ops[name]["bindings"]["kafka"]["groupId"]["pattern"]
        assert pattern == r"^nbx\.([A-Z]{2})$"
        assert re.fullmatch(pattern, topics.group("DE"))
        assert not re.fullmatch(pattern, topics.group("XR") + ".other")


def test_servers_offer_plaintext_mtls_and_scram() -> None:
    """The development server is plaintext; the production ones use TLS with a client
    certificate (X509) or SCRAM-SHA-512."""
    doc = document()
    servers = doc["servers"]
    assert servers["development"]["protocol"] == "kafka"
    assert "security" not in servers["development"]
    schemes = doc["components"]["securitySchemes"]
    kinds = {
        name: schemes[s["security"][0]["$ref"].rsplit("/", 1)[1]]["type"]
        for name, s in servers.items()
        if "security" in s
    }
    assert kinds == {"production-mtls": "X509", "production-scram": "scramSha512"}
    assert all(servers[n]["protocol"] == "kafka-secure" for n in kinds)


def test_schema_export_writes_the_asyncapi_document(tmp_path: Path) -> None:
    """`nbx schema export --out DIR` writes asyncapi.yaml beside the JSON Schemas, as YAML that
    loads to the document the module builds."""
    result = CliRunner().invoke(main, ["schema", "export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / asyncapi.FILE_NAME) in result.output.splitlines()
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".json"))
    written = yaml.safe_load((tmp_path / asyncapi.FILE_NAME).read_text(encoding="utf-8"))
    assert written == asyncapi.asyncapi_document(names)
    assert written["asyncapi"] == "3.0.0"
