"""The bureau commands end to end: node init, publish, consume, inbox, status, cancel; and one
clear error line for bad input."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from broker import devbroker
from broker.examples import notices_dir
from broker.node.provision import provision


def nbx(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``nbx`` as a user would: a new Python process."""
    return subprocess.run(
        [sys.executable, "-m", "broker", *args], capture_output=True, text=True, timeout=timeout
    )


def nbx_in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``nbx`` in this process (click's runner: the same command, error path and exit code,
    without the second or two a new Python process spends importing). For tests that run many
    commands; :func:`nbx` for those about the process itself (signals, the entry point)."""
    from click.testing import CliRunner

    from broker.cli import main

    result = CliRunner().invoke(main, list(args))
    return subprocess.CompletedProcess(
        ["nbx", *args], result.exit_code, result.stdout, result.stderr
    )


def consume_together(*configs: Path, until_idle_s: float = 2.0) -> None:
    """What ``nbx consume --config C --until-idle 2`` does for each node file of ``configs``,
    the daemons side by side in this process: the bureaus' daemons are independent, and run one
    after another each would add its group join and idle wait. A daemon that fails raises."""
    from broker.node import ConsumerDaemon
    from broker.node.config import NodeConfig

    async def one(path: Path) -> None:
        daemon = ConsumerDaemon.from_config(NodeConfig.load(path))
        try:
            await daemon.run(until_idle_s=until_idle_s)
        finally:
            daemon.sink.close()

    async def every() -> None:
        await asyncio.gather(*(one(path) for path in configs))

    asyncio.run(every())


@pytest.mark.e2e
def test_publish_consume_inbox_status_cancel(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """IT publishes the example red notice to FR and DE with `nbx publish`; their daemons
    (`nbx consume --until-idle`) store it; `nbx inbox list/show` read it; IT's daemon records
    the receipts and `nbx status --json` shows delivered; `nbx cancel` purges it at both.

    `nbx publish`, FR's first `nbx consume`, `nbx status` and `nbx cancel` run as a user runs
    them (a new Python process); the other commands in this process (:func:`nbx_in_process`:
    the same commands, output and exit codes, without a second or two of imports each)."""
    configs = provision(
        tmp_path,
        ["IT", "FR", "DE"],
        bootstrap=fresh_broker.bootstrap,
        policies=Path("deploy/policies"),
        enable_idempotence=idempotence_supported,
        session_timeout_ms=6000,
    )
    red = notices_dir() / "red.json"
    out = nbx("publish", "--config", str(configs["IT"]), str(red), "--to", "FR,DE", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert sorted(r["recipient"] for r in result["recipients"] if r["status"] == "sent") == [
        "DE",
        "FR",
    ]
    for cc, run_nbx in (("FR", nbx), ("DE", nbx_in_process)):
        run = run_nbx("consume", "--config", str(configs[cc]), "--until-idle", "2")
        assert run.returncode == 0, run.stderr
        assert '"event": "package.delivered"' in run.stdout
    listed = nbx_in_process("inbox", "list", "--config", str(configs["FR"]), "--json")
    assert [r["notice_id"] for r in json.loads(listed.stdout)] == ["IT-2025-0001"]
    show = ("inbox", "show", "IT-2025-0001", "--purpose", "test", "--json", "--config")
    shown = json.loads(nbx_in_process(*show, str(configs["DE"])).stdout)
    assert shown["sender"] == "IT"
    assert shown["view"]["person"]["family_name"] == "ROSSETTI"
    assert shown["withheld"] == [  # the shape of every withheld field (schemas/cli/defs.json)
        {"path": "person.biometrics.fingerprints", "rule": "de-no-biometrics"},
        {"path": "person.biometrics.photos", "rule": "de-no-biometrics"},
    ]
    it_run = nbx_in_process("consume", "--config", str(configs["IT"]), "--until-idle", "2")
    assert it_run.returncode == 0, it_run.stderr
    status = json.loads(nbx("status", "--config", str(configs["IT"]), "IT-2025-0001",
                            "--json").stdout)  # fmt: skip
    got = {
        r["recipient"]: [x["status"] for m in r["messages"] for x in m["receipts"]]
        for r in status["recipients"]
    }
    assert got == {"DE": ["delivered"], "FR": ["delivered"]}

    cancel = nbx("cancel", "--config", str(configs["IT"]), "IT-2025-0001", "--reason", "arrested")
    assert cancel.returncode == 0, cancel.stderr
    consume_together(configs["FR"], configs["DE"])
    for cc in ("FR", "DE"):
        after = json.loads(nbx_in_process(*show, str(configs[cc])).stdout)
        assert after["status"] == "cancelled"
        assert after["view"] is None


def test_node_init_writes_a_loadable_node(tmp_path: Path) -> None:
    """`nbx node init FR` writes keys (0600), a signed directory and a node.toml that loads."""
    from broker.node.config import NodeConfig
    from broker.node.runtime import load_node

    folder = tmp_path / "fr"
    out = nbx("node", "init", "FR", "--dir", str(folder), "--bootstrap", "127.0.0.1:19092")
    assert out.returncode == 0, out.stderr
    config = NodeConfig.load(folder / "FR" / "node.toml")
    assert config.bureau == "FR"
    assert config.kafka.bootstrap == "127.0.0.1:19092"
    node = load_node(config)
    assert node.keys.bureau == "FR"
    assert (folder / "FR" / "keys" / "FR.signing.key").stat().st_mode & 0o077 == 0
    again = nbx("node", "init", "FR", "--dir", str(folder))
    assert again.returncode == 1
    assert again.stderr.strip() == f"nbx: error: {folder}: already exists and is not empty"


def test_node_init_writes_a_network_of_several_bureaus(tmp_path: Path) -> None:
    """`nbx node init IT FR` writes one anchor and one directory listing both, and a node each
    whose directory names the other; a bureau given twice is refused before anything is written."""
    from broker.node.config import NodeConfig
    from broker.node.runtime import load_node

    folder = tmp_path / "net"
    twice = nbx_in_process("node", "init", "IT", "FR", "it", "--dir", str(folder))
    assert twice.returncode == 1
    assert twice.stderr.strip() == "nbx: error: bureau IT given twice"
    assert not folder.exists()
    unknown = nbx_in_process("node", "init", "IT", "QQ", "--dir", str(folder))
    assert unknown.stderr.strip() == "nbx: error: unknown ISO 3166-1 alpha-2 country code 'QQ'"
    assert not folder.exists()
    out = nbx_in_process("node", "init", "it", "FR", "--dir", str(folder))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == [
        f"wrote {folder / 'IT' / 'node.toml'}",
        f"wrote {folder / 'FR' / 'node.toml'}",
    ]
    for cc, other in (("IT", "FR"), ("FR", "IT")):
        node = load_node(NodeConfig.load(folder / cc / "node.toml"))
        assert node.keys.bureau == cc
        assert node.directory.bureau_ids() == ["FR", "IT"]
        assert node.directory.recipient_key(other)[0]
    # written for Apache Kafka unless told otherwise (read as written: tests set NBX_KAFKA__*)
    toml = (folder / "IT" / "node.toml").read_text()
    assert "require_log_append_time = true\n" in toml
    assert "pace_empty_fetches = false  #" in toml
    assert "enable_idempotence = true\n" in toml
    for impl, stamped, paced in (("noida", "true", "true"), ("tansu", "false", "false")):
        dev = tmp_path / impl
        init = nbx_in_process("node", "init", "IT", "--dir", str(dev), "--dev-broker", impl)
        assert init.returncode == 0, init.stderr
        toml = (dev / "IT" / "node.toml").read_text()
        assert f"require_log_append_time = {stamped}\n" in toml
        assert f"pace_empty_fetches = {paced}  #" in toml
        assert f"enable_idempotence = {stamped}\n" in toml  # tansu has no idempotent producer


@pytest.fixture
def node_config(tmp_path: Path) -> Path:
    configs = provision(
        tmp_path, ["IT", "FR"], bootstrap=f"127.0.0.1:{devbroker.free_port()}",
        policies=Path("deploy/policies"),
    )  # fmt: skip
    return configs["IT"]


def _one_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_invalid_notice_is_one_line(node_config: Path, tmp_path: Path) -> None:
    """A notice that fails validation is refused before anything is sent."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"notice_type": "red", "notice_id": "X"}))
    line = _one_line(nbx_in_process("publish", "--config", str(node_config), str(bad)))
    assert line.startswith(f"nbx: error: {bad}: invalid notice (")
    assert "`nbx validate` lists them all" in line


def test_missing_notice_file_is_one_line(node_config: Path, tmp_path: Path) -> None:
    """A notice file that does not exist is named."""
    line = _one_line(
        nbx_in_process("publish", "--config", str(node_config), str(tmp_path / "no.json"))
    )
    assert line == f"nbx: error: {tmp_path / 'no.json'}: notice file not found"


def test_unknown_country_is_one_line(node_config: Path) -> None:
    """--to with something that is not a country code is refused by the argument parser."""
    red = notices_dir() / "red.json"
    out = nbx_in_process("publish", "--config", str(node_config), str(red), "--to", "FRA")
    assert out.returncode == 2
    assert "expected 'all' or country codes" in out.stderr
    assert "Traceback" not in out.stderr


def test_unreadable_key_is_one_line(node_config: Path) -> None:
    """A private key readable by others is refused with the file named."""
    key = node_config.parent / "keys" / "IT.signing.key"
    key.chmod(0o644)
    line = _one_line(
        nbx_in_process("publish", "--config", str(node_config), str(notices_dir() / "red.json"))
    )
    assert str(key) in line


def test_unreachable_broker_is_one_line(node_config: Path) -> None:
    """No broker at the configured address: one line naming it, exit 1."""
    line = _one_line(
        nbx("publish", "--config", str(node_config), str(notices_dir() / "red.json"), "--to", "FR")
    )
    assert "cannot reach the Kafka broker at 127.0.0.1:" in line


def test_consume_gives_up_after_connect_timeout(node_config: Path) -> None:
    """The daemon retries an unreachable broker with backoff (transport.retry in its log) and,
    with --connect-timeout, gives up with one clear line."""
    out = nbx("consume", "--config", str(node_config), "--connect-timeout", "2")
    assert "cannot reach the Kafka broker" in _one_line(out)
    assert '"event": "transport.retry"' in out.stdout


def test_missing_config_is_one_line(tmp_path: Path) -> None:
    """A config path that does not exist is named."""
    line = _one_line(nbx("inbox", "list", "--config", str(tmp_path / "node.toml")))
    assert line == f"nbx: error: {tmp_path / 'node.toml'}: config file not found"


def test_the_node_file_shows_the_defaults_of_the_settings_it_leaves_out(tmp_path: Path) -> None:
    """Each commented `# key = value` of a generated node.toml is the setting's real default,
    and uncommenting every one of them gives a node file that loads with the same settings."""
    import tomllib

    from broker.node.config import NodeConfig

    path = provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1")["FR"]
    text = path.read_text()
    config = NodeConfig.load(path)
    section = ""
    commented: list[tuple[str, str, object]] = []
    for line in text.splitlines():
        body = line.removeprefix("# ")
        if body.startswith("[") and body.split("]")[0].strip("[ ").isidentifier():
            section = body.split("]")[0].strip("[ ")
        elif line.startswith("# ") and " = " in body:
            key = body.split(" = ")[0]
            value = tomllib.loads(body.split("  #")[0])[key]
            commented.append((section, key, value))
    assert {(s, k) for s, k, _ in commented} == {
        ("trust", "poll_interval_s"),
        ("trust", "max_staleness_s"),
        ("trust", "max_directory_age_days"),
        ("screening", "protected"),
        ("screening", "secret_env"),
        ("screening", "refusal_threshold"),
        ("shredding", "topic_retention_days"),
        ("shredding", "rotate_every_days"),
        ("shredding", "grace_days"),
        ("shredding", "auto"),
        ("retention", "warn_days"),
        ("retention", "confirm_within"),
    }
    for section, key, value in commented:
        actual = getattr(getattr(config, section), key)
        if isinstance(actual, Path):  # relative paths are read against the node file's folder
            assert actual == path.parent / str(value), (section, key)
        else:
            assert actual == value, (section, key)
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and (" = " in line or line.startswith("# [")) else line
        for line in text.splitlines()
    )
    path.write_text(uncommented)
    assert NodeConfig.load(path) == config
