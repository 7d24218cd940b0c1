"""``nbx keys`` and ``nbx directory``: the operator workflow end to end, and one-line errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner, Result

from broker.cli import main


def run(*args: object, ok: bool = True, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    assert (result.exit_code == 0) == ok, result.output
    return result


def kid_of(path: Path, use: str) -> str:
    kid: str = next(k["kid"] for k in json.loads(path.read_text())["keys"] if k["use"] == use)
    return kid


def test_anchor_bureau_add_rotate_revoke_show_verify(tmp_path: Path) -> None:
    """The whole lifecycle through the CLI; every change is a new serial that verifies."""
    anchor, d = tmp_path / "anchor", tmp_path / "directory.json"
    run("keys", "init-anchor", anchor)
    assert stat.S_IMODE((anchor / "trust-anchor.key").stat().st_mode) == 0o600
    run("keys", "new-bureau", "FR", "--dir", tmp_path / "fr")
    run("keys", "new-bureau", "FR", "--dir", tmp_path / "fr2")
    ak, pub = anchor / "trust-anchor.key", anchor / "trust-anchor.pub"
    fr1 = tmp_path / "fr" / "FR.public.json"
    run(
        "directory",
        "add",
        "FR",
        "--keys",
        fr1,
        "--name",
        "NCB Paris",
        "--file",
        d,
        "--anchor-key",
        ak,
    )
    out = run("directory", "verify", d, "--anchor", pub).output
    assert "serial 1" in out
    run(
        "directory",
        "rotate",
        "FR",
        "--keys",
        tmp_path / "fr2" / "FR.public.json",
        "--overlap",
        "2d",
        "--file",
        d,
        "--anchor-key",
        ak,
    )
    run(
        "directory",
        "revoke",
        "FR",
        "--kid",
        kid_of(fr1, "sign"),
        "--at",
        "2030-01-01T00:00:00Z",
        "--reason",
        "superseded",
        "--file",
        d,
        "--anchor-key",
        ak,
    )
    shown = run("directory", "show", d, "--anchor", pub).output
    assert "serial 3" in shown
    assert "revoked at 2030-01-01T00:00:00Z (superseded)" in shown
    assert shown.count("Ed25519") == 2
    assert shown.count("X25519") == 2
    assert "-----BEGIN" not in shown
    run("directory", "verify", d, "--anchor", pub, "--min-serial", "3")
    err = run("directory", "verify", d, "--anchor", pub, "--min-serial", "4", ok=False).output
    assert err.strip().startswith("nbx: error:")
    assert "rollback" in err


def test_forged_directory_and_wrong_anchor(tmp_path: Path) -> None:
    """A directory checked against another anchor fails with one line, no traceback."""
    run("keys", "init-anchor", tmp_path / "a")
    run("keys", "init-anchor", tmp_path / "b")
    run("keys", "new-bureau", "DE", "--dir", tmp_path)
    d = tmp_path / "d.json"
    run(
        "directory",
        "add",
        "DE",
        "--keys",
        tmp_path / "DE.public.json",
        "--name",
        "BKA",
        "--file",
        d,
        "--anchor-key",
        tmp_path / "a" / "trust-anchor.key",
    )
    err = run("directory", "verify", d, "--anchor", tmp_path / "b" / "trust-anchor.pub", ok=False)
    assert "does not verify" in err.output
    assert "Traceback" not in err.output
    err = run(
        "directory",
        "add",
        "DE",
        "--keys",
        tmp_path / "DE.public.json",
        "--name",
        "x",
        "--file",
        d,
        "--anchor-key",
        tmp_path / "b" / "trust-anchor.key",
        ok=False,
    )
    assert "does not verify" in err.output


def test_passphrase_and_permissions(tmp_path: Path) -> None:
    """Keys created with NBX_KEY_PASSPHRASE need it; a group-readable anchor key is refused."""
    env = {"NBX_KEY_PASSPHRASE": "s3cret"}
    run("keys", "init-anchor", tmp_path, env=env)
    run("keys", "new-bureau", "IT", "--dir", tmp_path)
    args = (
        "directory",
        "add",
        "IT",
        "--keys",
        tmp_path / "IT.public.json",
        "--name",
        "x",
        "--file",
        tmp_path / "d.json",
        "--anchor-key",
        tmp_path / "trust-anchor.key",
    )
    err = run(*args, ok=False, env={"NBX_KEY_PASSPHRASE": ""}).output
    assert "is encrypted; set NBX_KEY_PASSPHRASE" in err
    (tmp_path / "trust-anchor.key").chmod(0o644)
    err = run(*args, ok=False, env=env).output
    assert "chmod 600" in err
    (tmp_path / "trust-anchor.key").chmod(0o600)
    run(*args, env=env)


def test_bad_arguments(tmp_path: Path) -> None:
    """Bad bureau ids, times and durations are usage errors, not tracebacks."""
    assert "bureau id" in run("keys", "new-bureau", "fra", "--dir", tmp_path, ok=False).output
    run("keys", "init-anchor", tmp_path)
    run("keys", "new-bureau", "FR", "--dir", tmp_path)
    d = tmp_path / "d.json"
    ak = tmp_path / "trust-anchor.key"
    run(
        "directory",
        "add",
        "FR",
        "--keys",
        tmp_path / "FR.public.json",
        "--name",
        "x",
        "--file",
        d,
        "--anchor-key",
        ak,
    )
    out = run(
        "directory",
        "revoke",
        "FR",
        "--kid",
        "k",
        "--at",
        "yesterday",
        "--reason",
        "r",
        "--file",
        d,
        "--anchor-key",
        ak,
        ok=False,
    ).output
    assert "bad time" in out
    out = run(
        "directory",
        "rotate",
        "FR",
        "--keys",
        tmp_path / "FR.public.json",
        "--overlap",
        "1w",
        "--file",
        d,
        "--anchor-key",
        ak,
        ok=False,
    ).output
    assert "bad duration" in out


def test_bench_envelope_prints_rows() -> None:
    """``nbx bench envelope`` prints seal and open times per audience size."""
    out = run("bench", "envelope", "--rounds", "1", "--recipients", "1", "--recipients", "3").output
    lines = out.strip().splitlines()
    assert lines[0].split()[0] == "recipients"
    assert [line.split()[0] for line in lines[1:]] == ["1", "3"]
