"""A node follows an anchor rotation in its directory file without a restart, remembers the chain
beside its store, and refuses what the chain does not allow; ``nbx keys rotate-anchor`` end to end
(docs/security/anchor-rotation.md). Real files and key material; the topic is in
test_anchor_live.py."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import time
from collections.abc import Callable, Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result
from structlog.testing import capture_logs

from broker.cli import main
from broker.errors import KeyDirectoryError
from broker.keys import BureauKeys, DirectoryBody, sign_directory
from broker.keys.anchor import kid_of, make_link
from broker.keys.directory_edit import (
    PublicDocument,
    add_bureau,
    announce_successor,
    empty_directory,
    reissue,
    take_over,
)
from broker.keys.files import public_document
from broker.node.runtime import FileDirectory, Freshness, SerialFile
from tests.keys.test_anchor import Key, forged_signature, new_key

FAST = Freshness(poll_interval_s=0.02, max_staleness_s=3600)


class Rotation:
    """Anchors A and B, and a directory file: serial 2 (A), 3 (A announces B), 4 (B takes over)."""

    def __init__(self, folder: Path) -> None:
        self.a, self.b = new_key(), new_key()
        now = datetime.now(UTC) - timedelta(minutes=5)
        doc = PublicDocument.model_validate(public_document(BureauKeys.generate("FR")))
        self.s2 = add_bureau(empty_directory(self.a.public_key(), now), doc, name="FR", now=now)
        self.link = make_link(self.a, self.b.public_key(), now)
        self.s3 = announce_successor(self.s2, self.link, now=now)
        self.s4 = take_over(self.s3, self.b.public_key(), now=now)
        self.path = folder / "directory.json"
        self.serials = SerialFile(folder / "FR.sqlite.directory-serial")
        self.write(self.s3, self.a)

    def write(self, body: DirectoryBody | bytes, key: Key | None = None) -> None:
        data = body if isinstance(body, bytes) else sign_directory(body, key or self.a)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(self.path)

    def follow(self) -> FileDirectory:
        return FileDirectory(self.path, self.a.public_key(), FAST, self.serials)


async def until(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.01)
    return check()


def events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


@pytest.fixture
def info_logs() -> Iterator[None]:
    """Let info events through while the test captures logs (an earlier test of the session may
    have configured a higher level), and restore the configuration afterwards."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        yield
    finally:
        structlog.configure(**saved)


@pytest.mark.usefixtures("info_logs")
async def test_a_running_node_follows_the_rotation_and_then_refuses_the_old_anchor(
    tmp_path: Path,
) -> None:
    """Pinned to A, the node reads A's announcement, then B's take-over while it runs: it pins B
    at once (logged with key ids and serials only) and stores the chain beside its store; a later
    directory signed by A (a higher serial) is skipped and the node keeps serial 4."""
    world = Rotation(tmp_path)
    with capture_logs() as logs:
        directory = world.follow()
        owner = object()
        await directory.start(owner)
        try:
            assert directory.serial == 3
            world.write(world.s4, world.b)
            assert await until(lambda: directory.serial == 4)
            assert kid_of(directory.anchor) == kid_of(world.b.public_key())
            late = reissue(world.s4, now=datetime.now(UTC)).model_copy(
                update={"anchor_kid": kid_of(world.a.public_key()), "anchor_chain": ()}
            )
            world.write(late, world.a)  # serial 5, signed by the old anchor
            assert await until(lambda: bool(events(logs, "directory.skipped")))
            assert directory.serial == 4
        finally:
            await directory.stop(owner)
    a, b = kid_of(world.a.public_key()), kid_of(world.b.public_key())
    assert events(logs, "directory.anchor-announced") == [
        {
            "event": "directory.anchor-announced",
            "log_level": "info",
            "topic": str(world.path),
            "serial": 3,
            "anchor_kid": b,
            "previous_anchor_kid": a,
        }
    ]
    assert events(logs, "directory.anchor-rotated") == [
        {
            "event": "directory.anchor-rotated",
            "log_level": "info",
            "topic": str(world.path),
            "serial": 4,
            "anchor_kid": b,
            "previous_anchor_kid": a,
        }
    ]
    stored = json.loads(world.serials.path.read_bytes())
    assert stored["serial"] == 4
    assert stored["anchor_chain"] == [world.link.model_dump(mode="json")]
    assert stat.S_IMODE(world.serials.path.stat().st_mode) == 0o600

    # a restart with the old anchor configured pins B from the stored chain: A's file is refused
    world.write(late, world.a)
    with pytest.raises(KeyDirectoryError, match="does not verify with the pinned trust anchor"):
        world.follow()
    world.write(world.s4, world.b)
    again = world.follow()
    assert kid_of(again.anchor) == b
    assert again.serial == 4


def test_without_the_serial_file_the_chain_in_the_body_is_followed(tmp_path: Path) -> None:
    """A new node (or one whose serial file is gone) configured with the old anchor reads the
    successor's directory: the chain in the body leads it to B, which it pins and stores."""
    world = Rotation(tmp_path)
    world.write(world.s4, world.b)
    directory = world.follow()
    assert directory.serial == 4
    assert kid_of(directory.anchor) == kid_of(world.b.public_key())
    assert world.serials.read_state() == (4, (world.link,))


async def test_a_successor_nobody_announced_is_refused_and_the_node_keeps_its_serial(
    tmp_path: Path,
) -> None:
    """A rogue key signs serial 9 naming itself the anchor, with a chain from a key the node
    never trusted: skipped while running (the node keeps serial 3 and anchor A), refused with one
    line naming the file at start."""
    world = Rotation(tmp_path)
    directory = world.follow()
    owner = object()
    rogue, other = new_key(), new_key()
    body = reissue(world.s3, now=datetime.now(UTC)).model_copy(
        update={
            "serial": 9,
            "anchor_kid": kid_of(rogue.public_key()),
            "successor": None,
            "anchor_chain": (make_link(other, rogue.public_key(), datetime.now(UTC)),),
        }
    )
    await directory.start(owner)
    try:
        with capture_logs() as logs:
            world.write(body, rogue)
            assert await until(lambda: bool(events(logs, "directory.skipped")))
        assert events(logs, "directory.skipped")[0]["reason"] == "unannounced-anchor"
        assert directory.serial == 3
        assert kid_of(directory.anchor) == kid_of(world.a.public_key())
    finally:
        await directory.stop(owner)
    a, r = kid_of(world.a.public_key()), kid_of(rogue.public_key())
    with pytest.raises(KeyDirectoryError) as caught:
        world.follow()
    assert str(caught.value) == (
        f"{world.path}: directory signature does not verify with the pinned trust anchor {a}; "
        f"it is signed by anchor {r}, which {a} did not announce as its successor"
    )


def test_a_tampered_serial_file_cannot_introduce_an_anchor(tmp_path: Path) -> None:
    """Someone who can write the serial file puts a link to their own key in it: the link does
    not verify with the configured anchor, and the node refuses to start (one line naming the
    file) rather than trust the key."""
    world = Rotation(tmp_path)
    world.write(world.s4, world.b)
    world.follow()
    rogue = new_key()
    fake = make_link(world.a, rogue.public_key(), datetime.now(UTC))
    stored = json.loads(world.serials.path.read_bytes())
    stored["anchor_chain"] = [{**fake.model_dump(mode="json"), "signature": world.link.signature}]
    world.serials.path.write_text(json.dumps(stored))
    a, r = kid_of(world.a.public_key()), kid_of(rogue.public_key())
    with pytest.raises(KeyDirectoryError) as caught:
        world.follow()
    assert str(caught.value) == (
        f"{world.serials.path}: the anchor link {a} -> {r} does not verify with anchor {a} (forged)"
    )
    world.serials.path.write_text(json.dumps({"serial": 4, "anchor_chain": {"x": 1}}))
    with pytest.raises(KeyDirectoryError) as caught:
        world.follow()
    assert str(caught.value) == (
        f"{world.serials.path}: anchor_chain is not a list of anchor links"
    )
    world.serials.path.write_text(json.dumps({"serial": 4}))  # a file from before: no chain
    assert kid_of(world.follow().anchor) == kid_of(world.b.public_key())


def test_a_forged_take_over_in_the_file_is_refused(tmp_path: Path) -> None:
    """The genuine chain A -> B, but the body signed by someone else: refused naming the file."""
    world = Rotation(tmp_path)
    world.write(forged_signature(world.s4, new_key()))
    with pytest.raises(KeyDirectoryError, match="does not verify with anchor"):
        world.follow()


# --- nbx keys rotate-anchor ---------------------------------------------------------------------


def run(*args: object, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert (result.exit_code == 0) == ok, result.output
    return result


def error(result: Result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_cli_rotate_anchor_announce_take_over_show_verify(tmp_path: Path) -> None:
    """The ceremony's commands: announce with the old key, take over with the new one; show
    prints the successor and the chain; verify and show with the old anchor follow the chain;
    later edits are signed with the new key; every misuse is one line and leaves the file."""
    old, new, d = tmp_path / "old", tmp_path / "new", tmp_path / "directory.json"
    run("keys", "init-anchor", old)
    run("keys", "init-anchor", new)
    run("keys", "new-bureau", "FR", "--dir", tmp_path / "fr")
    run("keys", "new-bureau", "DE", "--dir", tmp_path / "de")
    ok, op = old / "trust-anchor.key", old / "trust-anchor.pub"
    nk, np = new / "trust-anchor.key", new / "trust-anchor.pub"
    fr = tmp_path / "fr" / "FR.public.json"
    run("directory", "add", "FR", "--keys", fr, "--name", "FR", "--file", d, "--anchor-key", ok)
    from broker.keys.files import load_anchor_public_key

    a, b = kid_of(load_anchor_public_key(op)), kid_of(load_anchor_public_key(np))

    before = d.read_bytes()
    out = run("keys", "rotate-anchor", "--file", d, "--anchor-key", nk, ok=False)
    assert error(out) == (
        f"nbx: error: {d}: directory names no successor anchor: nothing to take over (the "
        "current anchor announces one first: nbx keys rotate-anchor --anchor-key CURRENT.key "
        "--successor NEW.pub)"
    )
    out = run("keys", "rotate-anchor", "--file", d, "--anchor-key", ok, "--successor", op, ok=False)
    assert error(out) == (
        f"nbx: error: {op}: the successor anchor {a} is the current anchor: give a new key"
    )
    out = run("keys", "rotate-anchor", "--file", d, "--anchor-key", nk, "--successor", np, ok=False)
    assert error(out) == (
        f"nbx: error: {d}: the key {b} is neither the anchor {a} of the directory nor its "
        "announced successor"
    )
    assert d.read_bytes() == before

    out = run("keys", "rotate-anchor", "--file", d, "--anchor-key", ok, "--successor", np)
    assert out.output.splitlines()[:2] == [
        f"anchor {a} announces its successor {b}",
        f"wrote {d} serial 2 (was 1)",
    ]
    assert f"successor announced: {b} at " in run("directory", "show", d, "--anchor", op).output
    other = tmp_path / "other"
    run("keys", "init-anchor", other)
    o = kid_of(load_anchor_public_key(other / "trust-anchor.pub"))
    out = run(
        "keys",
        "rotate-anchor",
        "--file",
        d,
        "--anchor-key",
        ok,
        "--successor",
        other / "trust-anchor.pub",
    )
    assert out.output.splitlines()[:3] == [
        f"anchor {a} announces its successor {o}",
        f"(replaces the announcement of {b} in serial 2)",
        f"wrote {d} serial 3 (was 2)",
    ]
    out = run("keys", "rotate-anchor", "--file", d, "--anchor-key", ok, "--successor", np)
    assert out.output.splitlines()[1] == f"(replaces the announcement of {o} in serial 3)"

    out = run("keys", "rotate-anchor", "--file", d, "--anchor-key", nk, "--successor", np, ok=False)
    assert error(out) == (
        f"nbx: error: {d}: the key {b} is the announced successor of anchor {a}: take over "
        "without --successor"
    )
    out = run("keys", "rotate-anchor", "--file", d, "--anchor-key", ok, ok=False)
    assert error(out) == (
        f"nbx: error: {d}: the key {a} is the current anchor of directory serial 4: to rotate, "
        "announce a successor with --successor NEW.pub"
    )
    rogue = tmp_path / "rogue"
    run("keys", "init-anchor", rogue)
    out = run(
        "keys", "rotate-anchor", "--file", d, "--anchor-key", rogue / "trust-anchor.key", ok=False
    )
    r = kid_of(load_anchor_public_key(rogue / "trust-anchor.pub"))
    assert error(out) == (
        f"nbx: error: {d}: the key {r} is neither the anchor {a} of directory serial 4 nor its "
        f"announced successor {b}"
    )

    out = run("keys", "rotate-anchor", "--file", d, "--anchor-key", nk, "--anchor", op)
    assert out.output.splitlines()[:3] == [
        f"directory serial 4 verified with {op}",
        f"anchor {b} takes over from {a} (anchor chain of 1 link(s))",
        f"wrote {d} serial 5 (was 4)",
    ]
    shown = run("directory", "show", d, "--anchor", op).output.splitlines()
    assert shown[1] == f"anchor {b} (signature verified along the chain {a} -> {b})"
    assert shown[2].startswith(f"anchor chain: {a} -> {b} at ")
    assert run("directory", "verify", d, "--anchor", op).output.startswith(f"ok: {d} serial 5")
    assert run("directory", "verify", d, "--anchor", np).output.startswith(f"ok: {d} serial 5")

    # the new anchor edits the directory; the old one can no longer
    de = tmp_path / "de" / "DE.public.json"
    out = run(
        "directory",
        "add",
        "DE",
        "--keys",
        de,
        "--name",
        "DE",
        "--file",
        d,
        "--anchor-key",
        ok,
        ok=False,
    )
    assert error(out) == (
        f"nbx: error: the directory serial 6 names the trust anchor {b}, not the signing key {a}"
    )
    run("directory", "add", "DE", "--keys", de, "--name", "DE", "--file", d, "--anchor-key", nk)
    listing = run("directory", "show", d, "--anchor", op).output
    assert f"anchor chain: {a} -> {b}" in listing
    assert "DE  DE  roles=member" in listing
    out = run("keys", "rotate-anchor", "--file", d, "--anchor-key", ok, "--successor", op, ok=False)
    assert error(out) == (
        f"nbx: error: {d}: the key {a} is no longer the anchor: directory serial 6 is signed by "
        f"its successor {b}"
    )


def test_cli_take_over_without_pinned_key_checks_the_announcing_anchor(tmp_path: Path) -> None:
    """Without --anchor the file is verified with the anchor that announced the successor; a file
    whose announcement was altered does not verify."""
    world = Rotation(tmp_path)
    key = tmp_path / "new.key"
    from broker.keys.files import write_private_key

    write_private_key(key, world.b, None)
    out = run("keys", "rotate-anchor", "--file", world.path, "--anchor-key", key)
    assert out.output.splitlines()[0] == (
        f"directory serial 3 verified with the announcing anchor {kid_of(world.a.public_key())}: "
        "compare it with your pinned key"
    )
    world.write(world.s3, world.a)
    document = json.loads(world.path.read_bytes())
    document["directory"]["bureaus"][0]["name"] = "EVIL"
    world.write(json.dumps(document).encode())
    out = run("keys", "rotate-anchor", "--file", world.path, "--anchor-key", key, ok=False)
    assert "directory signature does not verify" in error(out)


def test_cli_bad_directories_are_one_line_naming_the_file(tmp_path: Path) -> None:
    """The issue's bad input for directories, through ``nbx``: a bad signature, a lower serial
    and a successor nobody announced are each one line naming the file (exit 1); publishing such
    a file is refused before anything is sent."""
    world = Rotation(tmp_path)
    pub = tmp_path / "anchor.pub"
    from broker.keys.files import write_public_key

    write_public_key(pub, world.a.public_key())
    a = kid_of(world.a.public_key())
    d = world.path

    document = json.loads(d.read_bytes())
    document["directory"]["bureaus"][0]["name"] = "EVIL"
    world.write(json.dumps(document).encode())
    out = run("directory", "verify", d, "--anchor", pub, ok=False)
    assert error(out) == (
        f"nbx: error: {d}: directory signature does not verify with the pinned trust anchor"
    )

    world.write(world.s3, world.a)
    out = run("directory", "verify", d, "--anchor", pub, "--min-serial", 9, ok=False)
    assert error(out) == (
        f"nbx: error: {d}: directory serial 3 is older than serial 9 (rollback refused)"
    )

    rogue = new_key()
    r = kid_of(rogue.public_key())
    body = world.s3.model_copy(update={"anchor_kid": r, "successor": None})
    world.write(body, rogue)
    expected = (
        f"nbx: error: {d}: directory signature does not verify with the pinned trust anchor {a}; "
        f"it is signed by anchor {r}, which {a} did not announce as its successor"
    )
    assert error(run("directory", "verify", d, "--anchor", pub, ok=False)) == expected
    out = run("directory", "publish", d, "--anchor", pub, "--bootstrap", "127.0.0.1:9", ok=False)
    assert error(out) == expected


def test_cli_consume_refuses_an_unannounced_anchor_at_start(tmp_path: Path) -> None:
    """``nbx consume`` with a directory file signed by a key the pinned anchor never announced:
    one line naming the file, exit 1, before any connection (nothing is read or committed)."""
    from broker.node.provision import provision

    paths = provision(tmp_path, ["FR", "US"], bootstrap="127.0.0.1:9")
    d = tmp_path / "directory.json"
    from broker.keys import Directory
    from broker.keys.files import load_anchor_public_key

    pinned = load_anchor_public_key(tmp_path / "anchor" / "trust-anchor.pub")
    body = Directory.load(d, pinned).body
    rogue = new_key()
    r, a = kid_of(rogue.public_key()), kid_of(pinned)
    d.write_bytes(sign_directory(body.model_copy(update={"anchor_kid": r}), rogue))
    out = run("consume", "--config", paths["FR"], "--connect-timeout", 0, ok=False)
    assert out.exit_code == 1
    line = error(out)
    assert line.startswith("nbx: error: ")
    assert line.endswith(
        f"directory.json: directory signature does not verify with the pinned trust anchor {a}; "
        f"it is signed by anchor {r}, which {a} did not announce as its successor"
    )


@pytest.mark.usefixtures("info_logs")
async def test_a_replaced_announcement_is_not_followed(tmp_path: Path) -> None:
    """A announced B, then announced C instead (B's key was lost or exposed before it took
    over). A node that read the second announcement skips a take-over by B (reason
    unannounced-anchor, its serial and anchor kept) and follows C's."""
    world = Rotation(tmp_path)
    c = new_key()
    now = datetime.now(UTC)
    to_c = make_link(world.a, c.public_key(), now)
    announced_c = announce_successor(world.s3, to_c, now=now)  # serial 4, names C
    by_b = take_over(reissue(world.s3, now=now), world.b.public_key(), now=now)  # serial 5
    by_c = take_over(announced_c, c.public_key(), now=now)  # serial 5
    world.write(announced_c, world.a)
    directory = world.follow()
    owner = object()
    await directory.start(owner)
    try:
        with capture_logs() as logs:
            world.write(by_b, world.b)
            assert await until(lambda: bool(events(logs, "directory.skipped")))
        assert events(logs, "directory.skipped") == [
            {
                "event": "directory.skipped",
                "log_level": "warning",
                "topic": str(world.path),
                "serial": 5,
                "current_serial": 4,
                "anchor_kid": kid_of(world.b.public_key()),
                "reason": "unannounced-anchor",
            }
        ]
        assert directory.serial == 4
        assert kid_of(directory.anchor) == kid_of(world.a.public_key())
        world.write(by_c, c)
        assert await until(lambda: directory.serial == 5)
        assert kid_of(directory.anchor) == kid_of(c.public_key())
    finally:
        await directory.stop(owner)
