"""The deployment scripts print the ACLs docs/architecture.md section 5 asks for and refuse bad
input."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "acls.sh"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run([bash, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_acls_read_only_own_topics_and_group() -> None:
    """FR may read only nbx.inbox.FR, nbx.receipts.FR, its quarantine and group nbx.FR, and
    write to inboxes and receipt topics of others."""
    out = run("FR", "--bootstrap", "k:9093", "--command-config", "a.properties")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    reads = [line for line in lines if "--operation Read" in line]
    assert {line.split("--topic ")[-1] for line in reads if "--topic" in line} == {
        "nbx.inbox.FR",
        "nbx.receipts.FR",
        "nbx.quarantine.FR",
        "nbx.directory",
    }
    assert any(line.endswith("--group nbx.FR") for line in reads)
    assert all("--allow-principal User:nbx-FR" in line for line in lines)
    writes = [line for line in lines if "--operation Write" in line and "prefixed" in line]
    assert {line.split("--topic ")[-1] for line in writes} == {"nbx.inbox.", "nbx.receipts."}


def test_acls_refuses_a_bad_bureau_id() -> None:
    """A bureau id that is not two upper-case letters is refused with exit 2."""
    out = run("fr", "--bootstrap", "k:9093", "--command-config", "a.properties")
    assert out.returncode == 2
    assert "two upper-case letters" in out.stderr


def test_systemd_unit_keeps_created_files_private() -> None:
    """The consumer's unit sets UMask=0077 in its [Service] section: whatever the daemon
    creates (store, WAL, temporary files) is readable by the nbx user only."""
    import configparser

    unit = SCRIPT.parents[1] / "systemd" / "nbx-consume@.service"
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.read_text())
    assert parser["Service"]["UMask"] == "0077"


def test_topics_script_creates_the_topics_with_the_configs_the_node_would(tmp_path: Path) -> None:
    """deploy/kafka/topics.sh passes the same topic configs as the daemon's own topic creation
    (bounded retention with daily segments on every topic but the directory), with a fake
    kafka-topics.sh on PATH that records its arguments."""
    from broker.transport import KafkaSettings
    from broker.transport.admin import topic_config

    fake = tmp_path / "kafka-topics.sh"
    fake.write_text('#!/usr/bin/env bash\necho "$@" >> "$(dirname "$0")/calls"\n')
    fake.chmod(0o755)
    script = SCRIPT.with_name("topics.sh")
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    args = ["XQ", "--bootstrap", "k:9093", "--command-config", "a.properties", "--retention-days"]
    done = subprocess.run(
        [shutil.which("bash") or "bash", str(script), *args, "3"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    created: dict[str, dict[str, str]] = {}
    for line in (tmp_path / "calls").read_text().splitlines():
        words = line.split()
        name = words[words.index("--topic") + 1]
        pairs = [words[i + 1] for i, w in enumerate(words) if w == "--config"]
        created[name] = dict(p.split("=", 1) for p in pairs if not p.startswith("min.insync"))
    retention = 3 * 86_400_000
    assert set(created) == {
        "nbx.inbox.XQ",
        "nbx.receipts.XQ",
        "nbx.quarantine.XQ",
        "nbx.hold.XQ",
        "nbx.directory",
    }
    for name, config in created.items():
        assert config == topic_config(name, retention), name
    assert KafkaSettings(bootstrap="k:1").topic_retention_ms == 7 * 86_400_000
    bad = subprocess.run(
        [shutil.which("bash") or "bash", str(script), *args, "0"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert (bad.returncode, bad.stderr.strip()) == (
        2,
        "topics.sh: --retention-days must be a whole number of days",
    )
