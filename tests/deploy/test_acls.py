"""``nbx deploy acls``: both output forms carry the same rules and topics (read back from the
script's commands, run with fake Kafka tools, and from the Strimzi YAML), the Strimzi resources
have the shape Strimzi expects, and bad input is one error line."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from broker.cli import main
from broker.deploy import acls as generate
from broker.deploy.topics import TopicSpec, topic_specs
from broker.keys.directory import Directory
from broker.keys.files import load_anchor_public_key
from broker.node.provision import provision
from broker.transport.admin import topic_config
from broker.transport.topics import DIRECTORY_TOPIC, hold, inbox, quarantine, receipts

BUREAUS = ("IT", "FR", "XR", "XO")


class Network:
    """A provisioned directory and its anchor's public key."""

    def __init__(self, folder: Path) -> None:
        provision(
            folder,
            BUREAUS,
            bootstrap="127.0.0.1:1",
            roles={"XR": ["reviewer"], "XO": ["oversight"]},
            supervise={"IT": "pre"},
        )
        self.directory_file = folder / "directory.json"
        self.anchor = folder / "anchor" / "trust-anchor.pub"
        self.directory = Directory.load(self.directory_file, load_anchor_public_key(self.anchor))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Network:
    return Network(tmp_path_factory.mktemp("net"))


def run(net: Network, *args: object, ok: bool = True) -> Result:
    base = ["deploy", "acls", "--directory", net.directory_file, "--anchor", net.anchor]
    result = CliRunner().invoke(main, [str(a) for a in [*base, *args]])
    assert (result.exit_code == 0) == ok, result.output
    return result


def fake_kafka_tools(folder: Path) -> Path:
    """A folder with fake kafka-acls.sh and kafka-topics.sh that append their arguments, one
    call a line, to its file ``calls``."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    for tool in ("kafka-acls.sh", "kafka-topics.sh"):
        fake = bin_dir / tool
        fake.write_text(
            '#!/usr/bin/env bash\nprintf "%q " "$(basename "$0")" "$@" >> "$(dirname "$0")/calls"\n'
            'echo >> "$(dirname "$0")/calls"\n'
        )
        fake.chmod(0o755)
    return bin_dir


def _sorted(specs: list[TopicSpec]) -> list[TopicSpec]:
    return sorted(specs, key=lambda s: s.name)


def test_the_script_adds_the_generated_rules_and_creates_every_topic(
    net: Network, tmp_path: Path
) -> None:
    """Run with fake kafka-acls.sh / kafka-topics.sh (KAFKA_BIN) that record their arguments:
    the calls read back are exactly the generated ACLs and topics, with the bootstrap and the
    admin's properties given at generation."""
    out = tmp_path / "acls.sh"
    run(
        net,
        "--bootstrap",
        "kafka:9093",
        "--command-config",
        "/etc/nbx/admin.properties",
        "--out",
        out,
    )
    assert out.stat().st_mode & stat.S_IXUSR
    bin_dir = fake_kafka_tools(tmp_path)
    env = {**os.environ, "KAFKA_BIN": f"{bin_dir}/"}
    done = subprocess.run(
        [shutil.which("bash") or "bash", str(out)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    calls = (bin_dir / "calls").read_text().splitlines()
    assert all("--bootstrap-server kafka:9093" in c for c in calls)
    assert all("--command-config /etc/nbx/admin.properties" in c for c in calls)
    acls, topics = generate.parse_kafka_acls_script("\n".join(calls))
    assert acls == generate.network_acls(net.directory)
    assert _sorted(topics) == _sorted(topic_specs(net.directory))


def test_the_script_needs_a_cluster(net: Network, tmp_path: Path) -> None:
    """Without --bootstrap and KAFKA_BOOTSTRAP the script stops before calling any tool."""
    out = tmp_path / "acls.sh"
    run(net, "--out", out)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env["KAFKA_BIN"] = "/nonexistent/"
    done = subprocess.run(
        [shutil.which("bash") or "bash", str(out)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode != 0
    assert "set KAFKA_BOOTSTRAP (or generate with --bootstrap)" in done.stderr


def test_strimzi_users_and_topics(net: Network) -> None:
    """A KafkaUser per principal (tls or scram-sha-512, simple authorization, acls with
    resource type, name, patternType, operations) and a KafkaTopic per topic (partitions,
    replicas, the node's configs: LogAppendTime, compacted directory, bounded retention); read
    back, the same rules and topics as the script."""
    text = run(net, "--format", "strimzi", "--cluster", "prod", "--replication", "3").output
    docs: list[dict[str, Any]] = list(yaml.safe_load_all(text))
    users = {d["metadata"]["name"]: d for d in docs if d["kind"] == "KafkaUser"}
    topics = {d["spec"]["topicName"]: d for d in docs if d["kind"] == "KafkaTopic"}
    assert sorted(users) == ["nbx-anchor", "nbx-fr", "nbx-it", "nbx-xo", "nbx-xr"]
    for doc in docs:
        assert doc["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert doc["metadata"]["labels"] == {"strimzi.io/cluster": "prod"}
        assert doc["metadata"]["name"] == doc["metadata"]["name"].lower()
    fr = users["nbx-fr"]["spec"]
    assert fr["authentication"] == {"type": "tls"}
    assert fr["authorization"]["type"] == "simple"
    assert {
        "resource": {"type": "group", "name": "nbx.FR", "patternType": "literal"},
        "operations": ["Read"],
        "host": "*",
        "type": "allow",
    } in fr["authorization"]["acls"]
    assert {"type": "cluster"} in [a["resource"] for a in fr["authorization"]["acls"]]
    anchor_acls = users["nbx-anchor"]["spec"]["authorization"]["acls"]
    assert [(a["resource"].get("name"), a["operations"]) for a in anchor_acls] == [
        (None, ["IdempotentWrite"]),
        (DIRECTORY_TOPIC, ["Write"]),
    ]
    assert topics[inbox("FR")]["spec"]["config"]["message.timestamp.type"] == "LogAppendTime"
    assert topics[receipts("FR")]["spec"]["config"]["message.timestamp.type"] == "LogAppendTime"
    assert topics[DIRECTORY_TOPIC]["spec"]["config"]["cleanup.policy"] == "compact"
    assert topics[DIRECTORY_TOPIC]["spec"]["partitions"] == 1
    for name in (inbox("FR"), receipts("XO"), quarantine("IT"), hold("XR")):
        spec = topics[name]["spec"]
        assert spec["replicas"] == 3
        assert spec["config"] == {**topic_config(name), "min.insync.replicas": "2"}
    assert set(topics) == {s.name for s in topic_specs(net.directory)}
    for user in users.values():  # the enums and required fields of Strimzi's v1beta2 CRDs
        assert user["spec"]["authorization"]["type"] == "simple"
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl["resource"]["type"] in {"topic", "group", "cluster", "transactionalId"}
            assert acl["resource"].get("patternType", "literal") in {"literal", "prefix"}
            assert acl["type"] in {"allow", "deny"}
            assert set(acl["operations"]) <= {str(op) for op in generate.Operation}
    for topic in topics.values():
        assert topic["spec"]["partitions"] >= 1
        assert 1 <= topic["spec"]["replicas"] <= 32767
        assert all(isinstance(v, str) for v in topic["spec"]["config"].values())
    acls, specs = generate.parse_strimzi(text)
    script_acls, script_specs = generate.parse_kafka_acls_script(run(net).output)
    assert acls == script_acls == generate.network_acls(net.directory)
    assert _sorted(specs) == _sorted(script_specs)


def test_scram_users_retention_and_partitions(net: Network) -> None:
    """--authentication scram-sha-512, --retention-days and --partitions reach the resources
    (the directory keeps one partition); --replication 1 sets no min.insync.replicas."""
    text = run(
        net,
        "--format",
        "strimzi",
        "--authentication",
        "scram-sha-512",
        "--retention-days",
        "2",
        "--partitions",
        "6",
        "--replication",
        "1",
    ).output
    docs = list(yaml.safe_load_all(text))
    assert {d["spec"]["authentication"]["type"] for d in docs if d["kind"] == "KafkaUser"} == {
        "scram-sha-512"
    }
    topics = {d["spec"]["topicName"]: d["spec"] for d in docs if d["kind"] == "KafkaTopic"}
    assert topics[inbox("FR")]["partitions"] == 6
    assert topics[DIRECTORY_TOPIC]["partitions"] == 1
    assert topics[inbox("FR")]["config"] == topic_config(inbox("FR"), 2 * 86_400_000)


def test_a_directory_that_does_not_verify_is_one_error_line(net: Network, tmp_path: Path) -> None:
    """Another anchor's key: exit 1, one `nbx: error:` line, nothing generated."""
    run_other = CliRunner().invoke(main, ["keys", "init-anchor", str(tmp_path / "other")])
    assert run_other.exit_code == 0, run_other.output
    result = CliRunner().invoke(
        main,
        [
            "deploy",
            "acls",
            "--directory",
            str(net.directory_file),
            "--anchor",
            str(tmp_path / "other" / "trust-anchor.pub"),
        ],
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("nbx: error:")
    assert "does not verify" in lines[0]
    missing = CliRunner().invoke(
        main,
        ["deploy", "acls", "--directory", str(tmp_path / "none.json"), "--anchor", str(net.anchor)],
    )
    assert missing.exit_code == 1
    assert missing.output.strip().endswith("directory file not found")


WRAPPER = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "acls.sh"


def test_deploy_kafka_acls_sh_wraps_nbx_deploy_acls(net: Network, tmp_path: Path) -> None:
    """deploy/kafka/acls.sh prints what `nbx deploy acls --format kafka-acls` generates, and
    with --apply runs it (fake Kafka tools: the same rules reach kafka-acls.sh); a --format
    given to it cannot change the form."""
    import sys

    nbx = tmp_path / "nbx"
    nbx.write_text(f'#!/usr/bin/env bash\nexec {sys.executable} -m broker "$@"\n')
    nbx.chmod(0o755)
    bin_dir = fake_kafka_tools(tmp_path)
    env = {
        **os.environ,
        "NBX": str(nbx),
        "KAFKA_BIN": f"{bin_dir}/",
        "PYTHONPATH": str(WRAPPER.parents[2]),
    }
    args = ["--directory", str(net.directory_file), "--anchor", str(net.anchor)]
    args += ["--bootstrap", "k:9093", "--command-config", "a.properties", "--format", "strimzi"]

    def wrapper(*more: str) -> subprocess.CompletedProcess[str]:
        bash = shutil.which("bash") or "bash"
        return subprocess.run(
            [bash, str(WRAPPER), *args, *more], capture_output=True, text=True, check=False, env=env
        )

    printed = wrapper()
    assert printed.returncode == 0, printed.stderr
    assert (
        printed.stdout
        == run(net, "--bootstrap", "k:9093", "--command-config", "a.properties").output
    )
    assert not (bin_dir / "calls").exists()
    applied = wrapper("--apply")
    assert applied.returncode == 0, applied.stderr
    acls, topics = generate.parse_kafka_acls_script((bin_dir / "calls").read_text())
    assert acls == generate.network_acls(net.directory)
    assert len(topics) == len(topic_specs(net.directory))


def test_deny_and_prefixed_rules_survive_both_forms() -> None:
    """Rules NBX does not generate today (a DENY, a prefixed pattern, a cluster rule) still read
    back unchanged from both forms: Strimzi's `prefix`, kafka-acls' `prefixed`."""
    from unittest.mock import Mock

    from broker.deploy.acls import Acl, Operation, PatternType, Permission, ResourceType

    rules = sorted(
        [
            Acl(
                "User:nbx-FR",
                ResourceType.TOPIC,
                "nbx.inbox.",
                Operation.WRITE,
                PatternType.PREFIXED,
            ),
            Acl(
                "User:nbx-FR",
                ResourceType.TOPIC,
                "nbx.inbox.DE",
                Operation.WRITE,
                permission=Permission.DENY,
            ),
            Acl("User:nbx-FR", ResourceType.GROUP, "nbx.", Operation.READ, PatternType.PREFIXED),
            Acl("User:nbx-FR", ResourceType.TOPIC, "nbx.inbox.DE", Operation.DESCRIBE),
            Acl(
                "User:nbx-FR",
                ResourceType.CLUSTER,
                generate.CLUSTER_NAME,
                Operation.IDEMPOTENT_WRITE,
            ),
        ]
    )
    directory = Mock(serial=7)
    script = generate.kafka_acls_script(directory, rules, [], bootstrap="k:1", command_config="a")
    assert "--deny-principal User:nbx-FR --operation Write --topic nbx.inbox.DE" in script
    assert "--resource-pattern-type prefixed" in script
    assert generate.parse_kafka_acls_script(script) == (rules, [])
    text = generate.strimzi_yaml(directory, generate.strimzi_resources(rules, [], cluster="c"))
    assert "patternType: prefix\n" in text
    assert "type: deny" in text
    assert generate.parse_strimzi(text) == (rules, [])
