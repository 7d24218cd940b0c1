"""The deployment files: the systemd unit, and deploy/kafka/topics.sh creating the topics with the
node's configs (deploy/kafka/acls.sh: tests/deploy/test_acls.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "acls.sh"


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
