"""The deploy kit (deploy/docker, deploy/compose, deploy/systemd) agrees with the code.

Nothing of the kit can run here (no container engine, no Apache Kafka, no systemd as init), so
these tests check what can be checked without them: the files parse; every node configuration
is a valid :class:`~broker.node.config.NodeConfig`; every ``NBX_*`` variable is a setting or a
secret file the entrypoint reads; ports, host names, principals, bureaus and topic names agree
between the compose file, the Kafka configuration, the scripts and :mod:`broker.transport`;
every ``nbx`` command the kit runs exists with the options it passes. What can run does: the
image's entrypoint (``sh``), ``setup.sh`` in a temporary copy (``nbx network init`` and openssl
for real), a TLS handshake with the certificates it makes, ``deploy/kafka/topics.sh`` with a
recording ``kafka-topics.sh``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from aiokafka.helpers import create_ssl_context
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.cli import main as nbx_cli
from broker.node.config import KafkaConfig, KeysConfig, NodeConfig, ScreeningConfig
from broker.transport import topics
from broker.transport.principals import ANCHOR_PRINCIPAL, principal

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKER = DEPLOY / "docker"
COMPOSE = DEPLOY / "compose"
SYSTEMD_UNIT = DEPLOY / "systemd" / "nbx-consume@.service"
NODE_IMAGE = "nbx-node"
#: where the image reads its configuration (Dockerfile CMD, compose mounts)
CONFIG_IN_CONTAINER = "/etc/nbx/node.toml"
#: the ``[metrics]`` keys part M of issue 22 adds to NodeConfig (docs/node-toml.md once merged):
#: until NodeConfig has the table, a node.toml's ``[metrics]`` may hold only these
PENDING_METRICS_KEYS = frozenset({"port", "host"})


# --- readers ---------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    """deploy/compose/compose.yaml as data."""
    data = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    """The compose services by name."""
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def kafka_services() -> dict[str, dict[str, Any]]:
    """The Kafka nodes (the services started by kafka/start.sh)."""
    return {
        name: s
        for name, s in services().items()
        if str(s.get("image", "")).startswith("apache/kafka:")
        and "/etc/kafka/nbx/start.sh" in s.get("command", [])
    }


def node_services() -> dict[str, dict[str, Any]]:
    """The services running the NBX image (daemons and the directory publisher)."""
    return {
        name: s
        for name, s in services().items()
        if str(s.get("image", "")).startswith(f"{NODE_IMAGE}:")
    }


def daemons() -> dict[str, dict[str, Any]]:
    """The NBX services running the image's default command (the consumer daemon)."""
    return {name: s for name, s in node_services().items() if "command" not in s}


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """A service's mounts: container path -> (source, read-only)."""
    found: dict[str, tuple[str, bool]] = {}
    for entry in service.get("volumes", []):
        parts = str(entry).split(":")
        found[parts[1]] = (parts[0], len(parts) > 2 and parts[2] == "ro")
    return found


def properties(path: Path) -> dict[str, str]:
    """A Java properties file (``key=value`` lines, ``#`` comments)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def server() -> dict[str, str]:
    """The Kafka nodes' server.properties (template)."""
    return properties(COMPOSE / "kafka" / "server.properties")


def listeners() -> dict[str, tuple[str, int]]:
    """Listener name -> (security protocol, port) from server.properties."""
    props = server()
    protocols = dict(p.split(":") for p in props["listener.security.protocol.map"].split(","))
    found: dict[str, tuple[str, int]] = {}
    for listener in props["listeners"].split(","):
        name, _, address = listener.partition("://")
        found[name] = (protocols[name], int(address.rpartition(":")[2]))
    return found


def bash_array(path: Path, name: str) -> list[str]:
    """The words of the bash array ``name=(...)`` in ``path``."""
    match = re.search(rf"^{name}=\(([^)]*)\)", path.read_text(), re.MULTILINE)
    assert match, f"{path.name}: no {name}=(...)"
    return match.group(1).split()


def bash_value(path: Path, name: str) -> str:
    """The value of the bash assignment ``name=...`` in ``path``."""
    match = re.search(rf"^{name}=(\S+)$", path.read_text(), re.MULTILINE)
    assert match, f"{path.name}: no {name}=..."
    return match.group(1).strip("\"'")


def node_config(path: Path) -> NodeConfig:
    """``path`` validated as a node configuration (with the pending ``[metrics]`` table set
    aside while NodeConfig does not have it)."""
    data = tomllib.loads(path.read_text())
    if "metrics" not in NodeConfig.model_fields:
        table = data.pop("metrics", {})
        assert set(table) <= PENDING_METRICS_KEYS, f"{path}: [metrics] {sorted(table)}"
    return NodeConfig(**data)


def node_tomls() -> dict[str, Path]:
    """The bureaus' node.toml files by bureau (deploy/compose/nodes/CC/node.toml)."""
    return {p.parent.name: p for p in sorted((COMPOSE / "nodes").glob("*/node.toml"))}


def service_of(bureau: str) -> dict[str, Any]:
    """The daemon service whose node.toml is ``bureau``'s."""
    wanted = f"./nodes/{bureau}/node.toml"
    found = [s for s in daemons().values() if mounts(s)[CONFIG_IN_CONTAINER][0] == wanted]
    assert len(found) == 1, f"{bureau}: {len(found)} services mount {wanted}"
    return found[0]


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined): (INSTRUCTION, arguments)."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    found: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def instruction(name: str) -> list[str]:
    """Every argument string of the Dockerfile's ``name`` instructions."""
    return [rest for word, rest in dockerfile() if word == name]


def metrics_table(path: Path) -> dict[str, Any]:
    """The ``[metrics]`` table of a node.toml."""
    table = tomllib.loads(path.read_text()).get("metrics", {})
    assert isinstance(table, dict)
    return table


def unit_settings() -> dict[str, dict[str, list[str]]]:
    """The systemd unit: section -> key -> values (a key may repeat)."""
    found: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in SYSTEMD_UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            found[section] = {}
            continue
        key, _, value = line.partition("=")
        found[section].setdefault(key.strip(), []).append(value.strip())
    return found


# --- nbx commands ----------------------------------------------------------------------------


def resolve(words: list[str]) -> tuple[click.Command, list[str]] | None:
    """The ``nbx`` command ``words`` names and its remaining words; ``None`` when a
    subcommand is missing."""
    command: click.Command = nbx_cli
    ctx = click.Context(nbx_cli, info_name="nbx")
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            return None
        command, rest = sub, rest[1:]
    return command, rest


def check_command(words: list[str], where: str) -> None:
    """``words`` (after ``nbx``) is an existing command given only options it has, with a valid
    value for each choice."""
    found = resolve(words)
    assert found is not None, f"{where}: nbx {' '.join(words)}: no such command"
    command, rest = found
    assert not isinstance(command, click.Group), f"{where}: nbx {' '.join(words)} is a group"
    options = {o: p for p in command.params for o in p.opts if isinstance(p, click.Option)}
    for i, word in enumerate(rest):
        if not word.startswith("--"):
            continue
        assert word in options, f"{where}: nbx {' '.join(words)}: no option {word}"
        param = options[word]
        if isinstance(param.type, click.Choice) and i + 1 < len(rest):
            assert rest[i + 1] in param.type.choices, f"{where}: {word} {rest[i + 1]}"


def setup_commands() -> list[list[str]]:
    """The ``"$NBX" ...`` invocations of setup.sh, as words (shell variables kept as text)."""
    text = re.sub(r"\\\n", " ", (COMPOSE / "setup.sh").read_text())
    found: list[list[str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith('"$NBX" '):
            words = shlex.split(stripped.split(">", 1)[0])
            found.append(words[1:])
    return found


def kit_commands() -> list[tuple[str, list[str]]]:
    """Every ``nbx`` command line of the kit, with where it is written."""
    found: list[tuple[str, list[str]]] = []
    cmd = json.loads(instruction("CMD")[-1])
    assert cmd[0] == "nbx"
    found.append(("Dockerfile CMD", cmd[1:]))
    for name, service in node_services().items():
        if "command" in service:
            assert service["command"][0] == "nbx", name
            found.append((f"compose {name}", [str(w) for w in service["command"][1:]]))
    found.extend(("setup.sh", words) for words in setup_commands())
    exec_start = shlex.split(unit_settings()["Service"]["ExecStart"][0])
    assert Path(exec_start[0]).name == "nbx"
    found.append(("systemd ExecStart", exec_start[1:]))
    return found


#: commands of other parts of issue 22 that may not be merged yet (ISSUE22-PLAN, parts A and T)
PENDING_COMMANDS = (["deploy", "acls"], ["deploy", "certs"])


def test_every_nbx_command_of_the_kit_exists_with_its_options() -> None:
    """The Dockerfile's CMD, the compose services' commands, setup.sh's calls and the systemd
    unit's ExecStart each name an existing ``nbx`` command and only options it has. The
    commands other parts add (``nbx deploy acls``, ``nbx deploy certs``) are checked as soon as
    they exist; until then their group must exist."""
    commands = kit_commands()
    wheres = {where for where, _ in commands}
    assert {"Dockerfile CMD", "compose directory", "setup.sh", "systemd ExecStart"} <= wheres
    for where, words in commands:
        pending = next((p for p in PENDING_COMMANDS if words[: len(p)] == p), None)
        if pending is not None and resolve(pending) is None:
            assert resolve(pending[:-1]) is not None, f"{where}: no nbx {pending[0]}"
            continue
        check_command(words, where)
    assert ["consume", "--config", CONFIG_IN_CONTAINER] in [w for _, w in commands]


def test_a_wrong_command_or_option_is_caught() -> None:
    """The check above can fail: a missing command and a missing option are both reported."""
    with pytest.raises(AssertionError, match="no such command"):
        check_command(["consume-all", "--config", "x"], "here")
    with pytest.raises(AssertionError, match="no option --configuration"):
        check_command(["consume", "--configuration", "x"], "here")
    with pytest.raises(AssertionError, match="--impl redpanda"):
        check_command(["network", "init", "d", "--impl", "redpanda"], "here")


# --- Dockerfile and entrypoint ---------------------------------------------------------------


def test_dockerfile_runs_as_an_unprivileged_user_with_a_read_only_root() -> None:
    """The image's final USER is a numeric non-root uid (the one the compose nodes run as), no
    ``.pyc`` is written at run time, the store is a volume and the entrypoint is the secret
    reader."""
    user = instruction("USER")[-1]
    uid = user.split(":")[0]
    assert uid.isdigit(), user
    assert int(uid) >= 1000, user
    assert all(s.get("user") == user for s in node_services().values())
    env = " ".join(instruction("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert json.loads(instruction("VOLUME")[-1]) == ["/var/lib/nbx"]
    assert json.loads(instruction("ENTRYPOINT")[-1]) == ["/usr/local/bin/nbx-entrypoint"]
    assert any("entrypoint.sh /usr/local/bin/nbx-entrypoint" in c for c in instruction("COPY"))


def test_dockerfile_copies_only_what_exists_and_the_context_sends() -> None:
    """Every COPY source from the build context exists in the repository, and the ignore file
    beside the Dockerfile re-includes each one after excluding everything."""
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    assert next(line for line in ignore if not line.startswith("#")) == "*"
    sources: list[str] = []
    for args in instruction("COPY"):
        words = [w for w in args.split() if not w.startswith("--")]
        if any(w.startswith("--from") for w in args.split()):
            continue
        sources.extend(words[:-1])
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert f"!{source.rstrip('/').removeprefix('./')}" in {
            line.rstrip("/") for line in ignore
        }, source


def test_healthcheck_asks_healthz_on_the_port_the_nodes_serve() -> None:
    """The HEALTHCHECK asks ``/healthz`` on the port the image exposes, which is the
    ``[metrics] port`` of every compose node (and the port its service exposes)."""
    check = instruction("HEALTHCHECK")[-1]
    match = re.search(r"http://127\.0\.0\.1:(\d+)/healthz", check)
    assert match, check
    port = int(match.group(1))
    assert [int(p) for p in instruction("EXPOSE")] == [port]
    for bureau, path in node_tomls().items():
        table = metrics_table(path)
        assert table.get("port") == port, bureau
        assert table.get("host") == "0.0.0.0", bureau  # noqa: S104 - in its own container
        assert service_of(bureau).get("expose") == [str(port)], bureau


def run_entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    """Run deploy/docker/entrypoint.sh with ``sh`` and ``command``."""
    return subprocess.run(
        [shutil.which("sh") or "/bin/sh", str(DOCKER / "entrypoint.sh"), *command],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"], **env},
    )


def test_entrypoint_reads_each_secret_file_into_the_variable_nbx_reads(tmp_path: Path) -> None:
    """``NBX_SASL_PASSWORD_FILE`` (and the passphrase's and screening secret's) become the
    variables NodeConfig names by default; the ``*_FILE`` variables are gone from the command's
    environment."""
    names = bash_like_list(DOCKER / "entrypoint.sh")
    assert set(names) == {
        KafkaConfig.model_fields["sasl_password_env"].default,
        KeysConfig.model_fields["passphrase_env"].default,
        ScreeningConfig.model_fields["secret_env"].default,
    }
    env: dict[str, str] = {}
    for i, name in enumerate(names):
        secret = tmp_path / name
        secret.write_text(f"secret-{i} with spaces")
        env[f"{name}_FILE"] = str(secret)
    show = "; ".join(f'echo "{n}=${n} {n}_FILE=${{{n}_FILE-unset}}"' for n in names)
    done = run_entrypoint(env, "sh", "-c", show)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{n}=secret-{i} with spaces {n}_FILE=unset" for i, n in enumerate(names)
    ]


def test_entrypoint_stops_on_an_unreadable_secret_file(tmp_path: Path) -> None:
    """A ``*_FILE`` naming a missing file stops the container with one line and exit 1,
    before the command runs."""
    missing = tmp_path / "nope"
    done = run_entrypoint({"NBX_SASL_PASSWORD_FILE": str(missing)}, "echo", "ran")
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"nbx-entrypoint: NBX_SASL_PASSWORD_FILE: cannot read {missing}\n",
    )


def bash_like_list(path: Path) -> list[str]:
    """The words of the entrypoint's ``for var in ...; do`` list."""
    match = re.search(r"^for var in ([^;]+); do", path.read_text(), re.MULTILINE)
    assert match
    return match.group(1).split()


# --- compose: Kafka --------------------------------------------------------------------------


def test_kafka_runs_in_kraft_mode_with_sasl_ssl_and_the_standard_authorizer() -> None:
    """Every Kafka node is broker and controller (KRaft, no ZooKeeper), with the ids and host
    names ``controller.quorum.voters`` lists; no listener is plaintext, the clients' listener is
    SASL_SSL with SCRAM; the StandardAuthorizer denies what no ACL allows; only the brokers
    and the admin are super users; no topic is created on first use."""
    props = server()
    nodes = kafka_services()
    assert len(nodes) == 3
    assert set(props["process.roles"].split(",")) == {"broker", "controller"}
    assert not any(k.startswith("zookeeper") for k in props)
    voters = {
        v.split("@")[0]: v.split("@")[1] for v in props["controller.quorum.voters"].split(",")
    }
    controller_port = listeners()[props["controller.listener.names"]][1]
    assert voters == {
        s["environment"]["NODE_ID"]: f"{s['hostname']}:{controller_port}" for s in nodes.values()
    }
    for name, s in nodes.items():
        assert s["environment"]["NODE_HOST"] == s["hostname"] == name
        assert mounts(s)["/etc/kafka/nbx"] == ("./kafka", True)
        assert mounts(s)["/var/lib/kafka/data"][0] in compose()["volumes"]
    assert {p for p, _ in listeners().values()} <= {"SSL", "SASL_SSL"}
    assert listeners()["CLIENT"][0] == "SASL_SSL"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.client.scram-sha-512.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    )
    assert "printf 'ssl.key.password=%s\\n'" in (COMPOSE / "kafka" / "start.sh").read_text()
    for name in listeners():
        assert props[f"listener.name.{name.lower()}.ssl.client.auth"] == "required", name
    assert server_truststore("CLIENT") == "network-ca.pem"
    assert (
        "cp secrets/certs/ca.pem secrets/kafka/network-ca.pem" in (COMPOSE / "setup.sh").read_text()
    )
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert set(props["super.users"].split(";")) == {"User:kafka-broker", "User:admin"}
    assert props["auto.create.topics.enable"] == "false"
    assert int(props["min.insync.replicas"]) < len(nodes)
    advertised = props["advertised.listeners"].split(",")
    assert {a.partition("://")[0] for a in advertised} == set(listeners()) - {"CONTROLLER"}


def test_admin_tools_use_the_internal_listener_as_a_super_user() -> None:
    """kafka-init talks to the INTERNAL listener (TLS with the admin's certificate) on every
    node; the generated ACL script is told the same bootstrap and command config."""
    init = COMPOSE / "kafka" / "init.sh"
    admin = properties(COMPOSE / "kafka" / "admin.properties")
    protocol, port = listeners()[server()["inter.broker.listener.name"]]
    assert admin["security.protocol"] == protocol == "SSL"
    assert admin["ssl.keystore.location"] == "/etc/kafka/nbx-secrets/admin.pem"
    bootstrap = bash_value(init, "bootstrap")
    expected = ",".join(f"{name}:{port}" for name in kafka_services())
    assert bootstrap == expected
    acls = next(w for w in setup_commands() if w[:2] == ["deploy", "acls"])
    assert acls[acls.index("--bootstrap") + 1] == expected
    assert acls[acls.index("--command-config") + 1] == bash_value(init, "admin")
    assert bash_value(init, "admin") == "/tmp/admin.properties"  # noqa: S108 - in kafka-init
    assert "{ cat /etc/kafka/nbx/admin.properties; printf 'ssl.key.password=" in init.read_text()
    assert acls[acls.index("--format") + 1] == "kafka-acls"
    assert mounts(services()["kafka-init"])["/etc/kafka/nbx-secrets"] == ("./secrets/kafka", True)
    assert 'bash "$secrets/acls.sh"' in init.read_text()
    assert "> secrets/kafka/acls.sh" in (COMPOSE / "setup.sh").read_text()


# --- compose: the nodes ----------------------------------------------------------------------


def test_every_node_toml_is_a_valid_node_configuration() -> None:
    """Each bureau's node.toml and the anchor's connection file load as NodeConfig; each
    connects with SASL_SSL and SCRAM as its principal, to the Kafka services on the clients'
    listener port, checking the broker against the cluster CA."""
    tomls = node_tomls()
    assert set(tomls) == {"FR", "DE"}
    client_port = listeners()["CLIENT"][1]
    hosts = {f"{name}:{client_port}" for name in kafka_services()}
    configs = {**{cc: node_config(p) for cc, p in tomls.items()}}
    configs["anchor"] = node_config(COMPOSE / "anchor" / "kafka.toml")
    for who, config in configs.items():
        k = config.kafka
        assert k.security_protocol == "SASL_SSL", who
        assert k.sasl_mechanism in server()["sasl.enabled.mechanisms"].split(","), who
        expected = ANCHOR_PRINCIPAL if who == "anchor" else principal(who)
        assert k.sasl_username == expected, who
        assert set(k.bootstrap.split(",")) == hosts, who
        assert str(k.ssl_cafile) == "/etc/nbx/tls/cluster-ca.pem", who
        assert k.topic_replication == len(kafka_services()), who
    for cc, config in configs.items():
        if cc != "anchor":
            assert config.bureau == cc
            assert config.trust.directory == "topic"
            assert config.sink_path() == Path(f"/var/lib/nbx/{cc}.sqlite")


def test_a_node_toml_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    """The validation above can fail: a misspelt key in a copy of FR's node.toml is refused."""
    text = node_tomls()["FR"].read_text().replace("sasl_username", "sasl_user")
    bad = tmp_path / "node.toml"
    bad.write_text(text)
    with pytest.raises(ValueError, match="sasl_user"):
        node_config(bad)


def test_each_daemon_mounts_what_its_node_toml_names() -> None:
    """For each bureau's service: its node.toml at the image's config path (read-only), the
    keys folder, anchor, policies and CA at the paths the file names (read-only but for the keys
    the daemon shreds), the store folder on a named volume; the container runs read-only,
    without capabilities, with no-new-privileges."""
    for cc, path in node_tomls().items():
        s = service_of(cc)
        config = node_config(path)
        m = mounts(s)
        assert m[CONFIG_IN_CONTAINER] == (f"./nodes/{cc}/node.toml", True)
        assert m[str(config.keys.dir)] == (f"./secrets/network/{cc}/keys", False)
        assert config.shredding.auto or m[str(config.keys.dir)][1]
        assert m[str(config.trust.anchor)] == ("./secrets/network/anchor/trust-anchor.pub", True)
        assert m[str(config.policy.dir)] == ("./secrets/network/policies", True)
        assert m[str(config.kafka.ssl_cafile)] == ("./secrets/tls/cluster-ca.pem", True)
        user = principal(cc)
        assert m[str(config.kafka.ssl_certfile)] == (f"./secrets/certs/{user}.pem", True)
        assert m[str(config.kafka.ssl_keyfile)] == (f"./secrets/certs/{user}.key", True)
        store = m[str(config.sink_path().parent)]
        assert store[0] in compose()["volumes"]
        assert not store[1]
        assert s["read_only"] is True
        assert s["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in s["security_opt"]
        assert s["depends_on"]["directory"] == {"condition": "service_completed_successfully"}


def test_compose_sets_only_known_settings_and_declared_secrets() -> None:
    """Every ``NBX_*`` variable an NBX service sets is a NodeConfig setting (``NBX_A__B``) or a
    ``*_FILE`` the entrypoint reads, pointing at a secret the service has and the compose file
    declares from the file setup.sh writes for that service's principal."""
    entry = set(bash_like_list(DOCKER / "entrypoint.sh"))
    declared = compose()["secrets"]
    setup = (COMPOSE / "setup.sh").read_text()
    assert 'secrets/nodes/$p.password"' in setup
    principals = bash_array(COMPOSE / "setup.sh", "PRINCIPALS")
    for name, s in node_services().items():
        config_file = mounts(s)[CONFIG_IN_CONTAINER][0]
        config = node_config(COMPOSE / config_file)
        for var, value in s.get("environment", {}).items():
            assert var.startswith("NBX_"), (name, var)
            if var.endswith("_FILE"):
                assert var.removesuffix("_FILE") in entry, (name, var)
                assert var.removesuffix("_FILE") == config.kafka.sasl_password_env
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in s["secrets"], (name, secret)
                assert secret in declared, (name, secret)
                user = config.kafka.sasl_username
                assert user in principals
                assert declared[secret] == {"file": f"./secrets/nodes/{user}.password"}
                continue
            node: Any = NodeConfig
            for part in var.removeprefix("NBX_").lower().split("__"):
                assert part in node.model_fields, (name, var)
                node = node.model_fields[part].annotation


# --- topics, principals, bureaus -------------------------------------------------------------


def test_bureaus_and_principals_agree_across_the_kit() -> None:
    """setup.sh, nodes/ and the daemons name the same bureaus; the SCRAM users of setup.sh and
    kafka/init.sh are their principals and the anchor's; setup.sh's brokers are the Kafka
    services."""
    bureaus = sorted(node_tomls())
    setup = COMPOSE / "setup.sh"
    init = COMPOSE / "kafka" / "init.sh"
    assert sorted(bash_array(setup, "BUREAUS")) == bureaus
    running = [COMPOSE / mounts(s)[CONFIG_IN_CONTAINER][0] for s in daemons().values()]
    assert sorted(node_config(path).bureau for path in running) == bureaus
    expected = sorted([*(principal(b) for b in bureaus), ANCHOR_PRINCIPAL])
    assert sorted(bash_array(setup, "PRINCIPALS")) == expected
    assert sorted(bash_array(init, "principals")) == expected
    assert bash_array(setup, "BROKERS") == list(kafka_services())


def test_generated_topics_follow_the_nodes_settings() -> None:
    """setup.sh generates the topics with the replication the nodes use (every broker, above
    the brokers' ``min.insync.replicas``) and the retention of their ``[shredding]``."""
    setup = COMPOSE / "setup.sh"
    acls = next(w for w in setup_commands() if w[:2] == ["deploy", "acls"])
    assert acls[acls.index("--replication") + 1] == "$REPLICATION"
    assert acls[acls.index("--retention-days") + 1] == "$RETENTION_DAYS"
    replication = int(bash_value(setup, "REPLICATION"))
    retention = float(bash_value(setup, "RETENTION_DAYS"))
    assert replication == len(kafka_services())
    assert int(server()["min.insync.replicas"]) < replication
    for cc, path in node_tomls().items():
        config = node_config(path)
        assert config.kafka.topic_replication == replication, cc
        assert config.shredding.topic_retention_days == retention, cc


def test_shell_scripts_parse() -> None:
    """Every shell script of the kit passes ``bash -n`` (the entrypoint ``sh -n``: the image
    has no bash)."""
    scripts = [COMPOSE / "setup.sh", *sorted((COMPOSE / "kafka").glob("*.sh"))]
    assert len(scripts) == 3
    for script, shell in [*((s, "bash") for s in scripts), (DOCKER / "entrypoint.sh", "sh")]:
        done = subprocess.run(
            [shutil.which(shell) or f"/bin/{shell}", "-n", str(script)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, ""), script


# --- systemd ---------------------------------------------------------------------------------


def test_systemd_unit_is_hardened() -> None:
    """The unit runs as nbx with no privileges to gain, a read-only system but for the store
    and the keys folder the daemon shreds in, private /tmp and devices, no capabilities,
    only the address families and system calls a network service needs, and files 0600."""
    service = {k: v[-1] for k, v in unit_settings()["Service"].items()}
    multi = unit_settings()["Service"]
    expected = {
        "User": "nbx",
        "NoNewPrivileges": "true",
        "ProtectSystem": "strict",
        "ProtectHome": "true",
        "PrivateTmp": "true",
        "PrivateDevices": "true",
        "ProtectKernelTunables": "true",
        "ProtectKernelModules": "true",
        "ProtectControlGroups": "true",
        "RestrictSUIDSGID": "true",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
        "RestartPreventExitStatus": "3 4",
    }
    assert {k: service.get(k) for k in expected} == expected
    assert set(service["ReadWritePaths"].split()) == {"/var/lib/nbx/%i", "/etc/nbx/%i/keys"}
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "@system-service" in multi["SystemCallFilter"]
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[1:] == ["consume", "--config", "/etc/nbx/%i/node.toml"]


# --- READMEs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["docker", "compose", "systemd"])
def test_each_kit_folder_says_what_was_not_run(folder: str) -> None:
    """Each folder of the kit has a README.md with a section saying what was and was not run
    on the project's machines."""
    text = (DEPLOY / folder / "README.md").read_text()
    assert "## What was and was not run here" in text
    assert "Not run:" in text.split("## What was and was not run here", 1)[1]


# --- setup.sh, run -------------------------------------------------------------------------


#: stand-ins for commands of other parts of issue 22 while they are not in this checkout: the
#: ACL script (part A) prints a comment; the certificates (part T) are made with openssl in the
#: layout ``nbx deploy certs`` writes (ca.pem, ca.key, <principal>.pem/.key)
STAND_INS = {
    "acls": 'echo "# stand-in"',
    "certs": """
while [ "$1" != "--out" ]; do shift; done; out="$2"; mkdir -p "$out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=network CA" \\
  -keyout "$out/ca.key" -out "$out/ca.pem" -days 30 2>/dev/null
for p in $NBX_STAND_IN_PRINCIPALS; do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$p" \\
    -keyout "$out/$p.key" -out "$out/$p.csr" 2>/dev/null
  openssl x509 -req -in "$out/$p.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -days 30 \\
    -CAcreateserial -out "$out/$p.pem" 2>/dev/null
done""",
}


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/compose after ``setup.sh`` ran in it, with the real ``nbx`` (``python
    -m broker`` of this checkout) and, for ``nbx deploy acls`` and ``nbx deploy certs`` while
    they are not in this checkout, the :data:`STAND_INS`."""
    base = tmp_path_factory.mktemp("kit")
    folder = base / "compose"
    shutil.copytree(COMPOSE, folder, ignore=shutil.ignore_patterns("secrets", ".env"))
    stub = base / "nbx"
    lines = ["#!/bin/sh"]
    for name, body in STAND_INS.items():
        if resolve(["deploy", name]) is None:
            lines.append(f'if [ "$1 $2" = "deploy {name}" ]; then {body}\nexit 0; fi')
    lines.append(f'PYTHONPATH="{ROOT}" exec "{sys.executable}" -m broker "$@"')
    stub.write_text("\n".join(lines) + "\n")
    stub.chmod(0o755)
    principals = " ".join(bash_array(COMPOSE / "setup.sh", "PRINCIPALS"))
    done = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(folder / "setup.sh")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NBX": str(stub), "NBX_STAND_IN_PRINCIPALS": principals},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "setup.sh: done; move secrets/network/anchor/trust-anchor.key, secrets/certs/ca.key and "
        "secrets/tls/cluster-ca.key offline"
    )
    return folder


def test_setup_writes_every_file_the_compose_file_mounts(kit: Path) -> None:
    """After setup.sh, every bind mount and secret file of the compose file exists (folders as
    folders), the cluster id is one Kafka accepts, the directory is signed by the anchor and
    lists the bureaus, and a second run refuses to overwrite."""
    from broker.keys import Directory
    from broker.keys.files import load_anchor_public_key

    for name, s in services().items():
        for target, (source, _) in mounts(s).items():
            if source.startswith("."):
                path = (kit / source).resolve()
                assert path.exists(), (name, source)
                assert path.is_dir() == (not Path(target).suffix), (name, source)
    for secret in compose()["secrets"].values():
        assert (kit / secret["file"]).read_text().strip()
    env = dict(line.split("=", 1) for line in (kit / ".env").read_text().splitlines())
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["KAFKA_CLUSTER_ID"])
    network = kit / "secrets" / "network"
    anchor = load_anchor_public_key(network / "anchor" / "trust-anchor.pub")
    directory = Directory.load(network / "directory.json", anchor)
    assert sorted(directory.bureau_ids()) == sorted(node_tomls())
    for cc in node_tomls():
        for key in (network / cc / "keys").glob("*.key"):
            assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    again = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(kit / "setup.sh")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NBX": "true"},
    )
    assert (again.returncode, again.stderr) == (
        2,
        "setup.sh: ./secrets already exists; remove it to start over\n",
    )


def test_generated_script_creates_the_topics_and_grants_the_users(kit: Path) -> None:
    """The ACL script setup.sh generated (``nbx deploy acls --format kafka-acls``), run with
    recording stand-ins for Kafka's tools: it creates exactly broker.transport.topics' topics
    of the bureaus, replicated on every broker with ``min.insync.replicas`` below that and the
    nodes' retention, against kafka-init's bootstrap and admin config, and it grants ACLs to
    exactly the principals kafka-init makes SCRAM users for."""
    if resolve(["deploy", "acls"]) is None:
        pytest.skip("nbx deploy acls is not in this checkout yet (issue 22, part A)")
    tools = kit.parent / "tools"
    tools.mkdir(exist_ok=True)
    for tool in ("kafka-topics.sh", "kafka-acls.sh"):
        fake = tools / tool
        fake.write_text(f'#!/usr/bin/env bash\necho "$@" >> "$(dirname "$0")/{tool}.calls"\n')
        fake.chmod(0o755)
    done = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(kit / "secrets" / "kafka" / "acls.sh")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "KAFKA_BIN": f"{tools}/"},
    )
    assert done.returncode == 0, done.stderr
    init = COMPOSE / "kafka" / "init.sh"
    created: dict[str, list[str]] = {}
    for line in (tools / "kafka-topics.sh.calls").read_text().splitlines():
        words = line.split()
        created[words[words.index("--topic") + 1]] = words
    expected = {topics.DIRECTORY_TOPIC}
    for cc in node_tomls():
        expected |= {topics.inbox(cc), topics.receipts(cc), topics.quarantine(cc)}
    assert set(created) == expected
    replication = len(kafka_services())
    retention_ms = str(int(bash_value(COMPOSE / "setup.sh", "RETENTION_DAYS")) * 86_400_000)
    for name, words in created.items():
        assert words[words.index("--bootstrap-server") + 1] == bash_value(init, "bootstrap")
        assert words[words.index("--command-config") + 1] == bash_value(init, "admin")
        assert words[words.index("--replication-factor") + 1] == str(replication), name
        configs = dict(w.split("=", 1) for w in words if "=" in w)
        assert int(configs["min.insync.replicas"]) < replication, name
        if name != topics.DIRECTORY_TOPIC:
            assert configs["retention.ms"] == retention_ms, name
    granted = set()
    for line in (tools / "kafka-acls.sh.calls").read_text().splitlines():
        words = line.split()
        granted.add(words[words.index("--allow-principal") + 1])
    assert granted == {f"User:{p}" for p in bash_array(init, "principals")}


def certificate(path: Path) -> x509.Certificate:
    """The first certificate in a PEM file."""
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def test_setup_certificates_name_the_brokers_and_the_super_users(kit: Path) -> None:
    """The brokers' certificate is signed by the cluster CA, names every Kafka service and
    serves as server and client (quorum); its CN and the admin's are the super users; both
    keys are encrypted in the PEM key stores Kafka reads."""
    secrets = kit / "secrets" / "kafka"
    ca = certificate(secrets / "cluster-ca.pem")
    supers = {u.removeprefix("User:") for u in server()["super.users"].split(";")}
    cns = set()
    for name in ("kafka", "admin"):
        store = (secrets / f"{name}.pem").read_text()
        assert "-----BEGIN ENCRYPTED PRIVATE KEY-----" in store, name
        assert "-----BEGIN PRIVATE KEY-----" not in store, name
        cert = certificate(secrets / f"{name}.pem")
        public = ca.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        cert.verify_directly_issued_by(ca)
        cns.add(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
        if name == "kafka":
            assert ExtendedKeyUsageOID.SERVER_AUTH in usages
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert names.get_values_for_type(x509.DNSName) == list(kafka_services())
    assert cns == supers


def key_password(kit: Path) -> str:
    """The password of the brokers' and admin's keys (setup.sh)."""
    return (kit / "secrets" / "kafka" / "key.password").read_text().strip()


@contextlib.contextmanager
def tls_listener(kit: Path, truststore: str) -> Iterator[tuple[int, list[str]]]:
    """A TLS listener on the loopback with the brokers' key store (kafka.pem) that requires a
    client certificate of ``truststore`` (secrets/kafka/...), as the listeners of
    server.properties do; yields its port and what it saw of each client (the certificate's CN,
    or the error)."""
    secrets = kit / "secrets" / "kafka"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(secrets / "kafka.pem", password=key_password(kit))
    context.load_verify_locations(secrets / truststore)
    context.verify_mode = ssl.CERT_REQUIRED
    seen: list[str] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        der = tls.getpeercert(binary_form=True)
                        cert = x509.load_der_x509_certificate(der) if der else None
                        cns = (
                            cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME) if cert else []
                        )
                        seen.append(str(cns[0].value) if cns else "no certificate")
                        tls.sendall(b"ok")
                except (ssl.SSLError, OSError) as exc:
                    seen.append(type(exc).__name__)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, seen
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the thread (Linux)
        sock.close()
        thread.join(timeout=10)


def server_truststore(listener: str) -> str:
    """The file (in secrets/kafka) a listener of server.properties trusts client certificates
    of."""
    props = server()
    location = props.get(
        f"listener.name.{listener.lower()}.ssl.truststore.location",
        props["ssl.truststore.location"],
    )
    return Path(location).name


def node_tls_context(kit: Path, service: dict[str, Any]) -> ssl.SSLContext:
    """The client TLS context NBX builds (broker.transport.kafka: aiokafka's
    create_ssl_context) from a service's node.toml, its container paths mapped to the files
    the compose file mounts there."""
    config = node_config(COMPOSE / mounts(service)[CONFIG_IN_CONTAINER][0])
    k = config.kafka

    def host(path: Path | None) -> str:
        assert path is not None
        return str(kit / mounts(service)[str(path)][0])

    context: ssl.SSLContext = create_ssl_context(
        cafile=host(k.ssl_cafile), certfile=host(k.ssl_certfile), keyfile=host(k.ssl_keyfile)
    )
    return context


def handshake(port: int, context: ssl.SSLContext, host: str) -> bytes:
    """Connect to 127.0.0.1:``port`` as ``host`` and read the listener's answer."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.recv(2)


def test_nodes_tls_settings_pass_the_clients_listener(kit: Path) -> None:
    """A TLS handshake on the loopback with the files setup.sh made, as the CLIENT listener
    runs it (the brokers' certificate; client certificates of the network CA of
    ``nbx deploy certs``): each NBX service's own TLS settings (node.toml, mounted files)
    verify the broker under every bootstrap host name and present the certificate of its
    principal; another host name is refused; the admin's certificate (cluster CA) is not
    accepted there."""
    users = {
        name: node_config(COMPOSE / mounts(s)[CONFIG_IN_CONTAINER][0]).kafka
        for name, s in node_services().items()
    }
    with tls_listener(kit, server_truststore("CLIENT")) as (port, seen):
        for name, s in node_services().items():
            context = node_tls_context(kit, s)
            hosts = [h.rpartition(":")[0] for h in users[name].bootstrap.split(",")]
            for host in hosts:
                assert handshake(port, context, host) == b"ok", (name, host)
            assert seen[-len(hosts) :] == [users[name].sasl_username] * len(hosts), name
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            handshake(port, node_tls_context(kit, services()["nbx-fr"]), "kafka-9")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(port, admin_context(kit), "kafka-1")
    assert seen[-1] == "SSLCertVerificationError"  # the server refused the certificate


def admin_context(kit: Path) -> ssl.SSLContext:
    """The admin's client TLS context (cluster CA, admin certificate)."""
    tls = kit / "secrets" / "tls"
    context: ssl.SSLContext = create_ssl_context(
        cafile=str(tls / "cluster-ca.pem"),
        certfile=str(tls / "admin.crt"),
        keyfile=str(tls / "admin.key"),
        password=key_password(kit),
    )
    return context


def test_admin_passes_the_internal_listener(kit: Path) -> None:
    """As the INTERNAL listener runs it (client certificates of the cluster CA), the admin's
    certificate is accepted under every broker name with its CN, a super user; a node's
    certificate (network CA) is not."""
    assert server_truststore("INTERNAL") == "cluster-ca.pem"
    with tls_listener(kit, server_truststore("INTERNAL")) as (port, seen):
        for host in kafka_services():
            assert handshake(port, admin_context(kit), host) == b"ok", host
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(port, node_tls_context(kit, services()["nbx-de"]), "kafka-1")
    assert seen == ["admin"] * len(kafka_services()) + ["SSLCertVerificationError"]
    assert f"User:{seen[0]}" in server()["super.users"].split(";")
