"""``nbx keys status | shred | next-epoch`` on a provisioned node, and the daemon's overdue-rotation
warning (real files; times chosen by provisioning the network in the past)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from broker.cli import main
from broker.examples import policies_dir
from broker.keys import Directory, files, sign_directory
from broker.keys.directory_edit import add_encryption_keys, read_public_document, reissue
from broker.keys.epochs import epochs_path, load_keys
from broker.logging import configure
from broker.node.config import NodeConfig
from broker.node.keycare import KeyCare
from broker.node.provision import provision


def run(*args: object, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert (result.exit_code == 0) == ok, result.output
    return result


def _day(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _node(tmp_path: Path, days_ago: float) -> tuple[Path, datetime]:
    """FR provisioned ``days_ago`` days ago (its key valid from then)."""
    then = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=days_ago)
    paths = provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1", now=then, policies=policies_dir())
    return paths["FR"], then


def _anchor_adds(tmp_path: Path, retired: datetime) -> None:
    """The anchor adds FR's next key (from next-epoch) valid from ``retired``, then re-issues."""
    anchor = files.load_signing_key(tmp_path / "anchor" / "trust-anchor.key")
    path = tmp_path / "directory.json"
    body = Directory.load(path, anchor.public_key()).body
    doc = read_public_document(tmp_path / "FR" / "keys" / "FR.next.public.json")
    body = reissue(add_encryption_keys(body, doc, now=retired), now=datetime.now(UTC))
    path.write_bytes(sign_directory(body, anchor))


def test_status_shows_the_current_epoch_and_the_next_rotation(tmp_path: Path) -> None:
    """A fresh node: one current epoch, the rotation due 90 days after it became valid."""
    config, then = _node(tmp_path, 10)
    kid = load_keys(tmp_path / "FR" / "keys", "FR").encryption_key_id
    lines = run("keys", "status", "--config", config).output.splitlines()
    assert lines[0] == (
        "FR: an old key is destroyed 26 days after it was retired "
        "(3 x (topic retention 7 days + segment) + grace 2 days)"
    )
    assert lines[1] == f"rotation: every 90 days, next due {_day(then + timedelta(days=90))}"
    assert lines[2].split() == [
        "KEY",
        "ID",
        "SUITE",
        "VALID",
        "FROM",
        "RETIRED",
        "DESTROY",
        "AFTER",
        "STATE",
    ]
    assert lines[3].split() == [kid, "X25519", _day(then), "-", "-", "current"]
    assert len(lines) == 4
    doc = json.loads(run("keys", "status", "--config", config, "--json").output)
    assert doc["rotation_overdue"] is False
    assert doc["destroy_after_retired_days"] == 26
    assert doc["epochs"] == [
        {
            "kid": kid,
            "alg": "X25519",
            "created": then.isoformat(),
            "retired": None,
            "destroy_after": None,
            "destroyed": None,
            "state": "current",
        }
    ]


def test_next_epoch_then_shred_only_after_the_window(tmp_path: Path) -> None:
    """next-epoch keeps the old key; shred destroys nothing while the window runs and the old
    key once it has passed; a second shred destroys nothing; status lists it as destroyed."""
    config, then = _node(tmp_path, 60)
    folder = tmp_path / "FR" / "keys"
    old = load_keys(folder, "FR").encryption_key_id
    out = run("keys", "next-epoch", "FR", "--dir", folder).output.splitlines()
    new = load_keys(folder, "FR").encryption_key_id
    assert out[:3] == [
        f"archived encryption key {old} in {epochs_path(folder, 'FR')}",
        f"new encryption key {new} (X25519)",
        f"wrote {folder / 'FR.next.public.json'}",
    ]
    assert run("keys", "shred", "--config", config).output == "nothing to destroy\n"

    recent = then + timedelta(days=50)  # retired 10 days ago: inside the 26-day window
    _anchor_adds(tmp_path, recent)
    shredded = run("keys", "shred", "--config", config).output
    assert shredded == f"nothing to destroy yet: {old} after {_day(recent + timedelta(days=26))}\n"
    assert set(load_keys(folder, "FR").decryption_keys()) == {old, new}

    tmp2 = tmp_path / "second"
    config2, then2 = _node(tmp2, 60)
    folder2 = tmp2 / "FR" / "keys"
    old2 = load_keys(folder2, "FR").encryption_key_id
    run("keys", "next-epoch", "FR", "--dir", folder2)
    retired = then2 + timedelta(days=30)  # retired 30 days ago: past the window
    _anchor_adds(tmp2, retired)
    assert run("keys", "shred", "--config", config2).output == f"destroyed {old2}\n"
    assert run("keys", "shred", "--config", config2).output == "nothing to destroy\n"
    rows = json.loads(run("keys", "status", "--config", config2, "--json").output)["epochs"]
    assert [(r["kid"], r["state"], r["retired"]) for r in rows] == [
        (old2, "destroyed", retired.isoformat()),
        (load_keys(folder2, "FR").encryption_key_id, "current", None),
    ]
    table = run("keys", "status", "--config", config2).output.splitlines()
    assert table[3].split()[:5] == [
        old2,
        "X25519",
        _day(then2),
        _day(retired),
        _day(retired + timedelta(days=26)),
    ]
    assert table[3].split()[5] == "destroyed"


def test_next_epoch_for_a_bureau_without_keys_is_one_error_line(tmp_path: Path) -> None:
    """No key files in --dir: one line, no traceback."""
    result = run("keys", "next-epoch", "FR", "--dir", tmp_path, ok=False)
    assert result.output == (
        f"nbx: error: {tmp_path}: no encryption key for FR (FR.encryption.key or FR.hybrid.key)\n"
    )


def _events(buf: io.StringIO, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in buf.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == event]


def test_an_overdue_rotation_is_shown_and_warned_once(tmp_path: Path) -> None:
    """A key valid for more than rotate_every_days: status says OVERDUE; the daemon's key care
    logs keys.rotation-overdue once (key id and due time only), not at every round."""
    config, then = _node(tmp_path, 100)
    due = then + timedelta(days=90)
    lines = run("keys", "status", "--config", config).output.splitlines()
    assert (
        lines[1] == f"rotation: every 90 days, next due {_day(due)} (OVERDUE: nbx keys next-epoch)"
    )
    loaded = NodeConfig.load(config)
    care = KeyCare.from_config(loaded)
    directory = Directory.load(
        Path(loaded.trust.directory), files.load_anchor_public_key(loaded.trust.anchor)
    )
    buf = io.StringIO()
    configure("DEBUG", stream=buf)
    try:
        now = datetime.now(UTC)
        held = care.run(directory, now)
        care.run(directory, now + timedelta(minutes=5))
    finally:
        configure()
    kid = load_keys(tmp_path / "FR" / "keys", "FR").encryption_key_id
    assert held is not None
    assert set(held) == {kid}
    warned = _events(buf, "keys.rotation-overdue")
    assert [(e["bureau"], e["key_id"], e["due"], e["level"]) for e in warned] == [
        ("FR", kid, due.isoformat(), "warning")
    ]


async def test_a_daemon_started_after_the_window_destroys_the_old_key_at_once(
    tmp_path: Path,
) -> None:
    """The destruction runs when the daemon starts (its first housekeeping round, at its clock),
    not only periodically; with ``[shredding] auto = false`` it is left to nbx keys shred."""
    from broker.node import ConsumerDaemon
    from broker.testing import MemoryBroker

    config, then = _node(tmp_path, 60)
    folder = tmp_path / "FR" / "keys"
    old = load_keys(folder, "FR").encryption_key_id
    run("keys", "next-epoch", "FR", "--dir", folder)
    new = load_keys(folder, "FR").encryption_key_id
    _anchor_adds(tmp_path, then + timedelta(days=30))  # retired 30 days ago: past the window
    kafka = MemoryBroker()

    manual = config.read_text() + "\n[shredding]\nauto = false\n"
    config.write_text(manual)
    daemon = ConsumerDaemon.from_config(NodeConfig.load(config), transport=kafka.transport())
    assert set(daemon.decryption_keys) == {old, new}
    await daemon.run(until_idle_s=0.2)
    daemon.sink.close()
    assert set(daemon.decryption_keys) == {old, new}
    assert old in load_keys(folder, "FR").decryption_keys()  # auto off: kept

    config.write_text(manual.replace("auto = false", "auto = true"))
    daemon = ConsumerDaemon.from_config(NodeConfig.load(config), transport=kafka.transport())
    assert set(daemon.decryption_keys) == {old, new}  # loaded before the first round
    await daemon.run(until_idle_s=0.2)
    daemon.sink.close()
    assert set(daemon.decryption_keys) == {new}
    assert set(load_keys(folder, "FR").decryption_keys()) == {new}
