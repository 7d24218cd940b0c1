"""The deployment scripts print the ACLs docs/architecture.md section 5 asks for and refuse bad
input."""

from __future__ import annotations

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
