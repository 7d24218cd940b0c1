"""Fault injection on the real broker: SIGKILL at random points, broker restart mid-stream, the
broker unreachable at start-up, a failing sink (read-only file, full disk) and a slow sink.

Each scenario counts what was sent, delivered, quarantined, lost and duplicated into the session
tally; lost and duplicated must stay 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker import devbroker
from broker.node import Publisher, PublishResult
from broker.sinks import Applied
from tests.conftest import broker_impl
from tests.node.helpers import Net, wait_for
from tests.replicas.support import Store, use_store
from tests.tls.conftest import Pki, TlsFront, make_pki, start_front
from tests.verify.support import (
    COUNTS,
    LOGS,
    SLOW,
    TALLY,
    canary_notice,
    handled_everything,
    produce_raw,
    read_all,
    settle,
)

# Not marked e2e: the suite runs once, on noida-db, in `make unit` (`make verify`: slow profile).

ROOT = Path(__file__).resolve().parents[2]
BASE_SEED = int(os.environ.get("NBX_VERIFY_SEED", "0")) or int.from_bytes(os.urandom(4), "big")


_OUTPUT: dict[int, tuple[Path, Path]] = {}


def _spawn(
    config: Path, *args: str, env: dict[str, str] | None = None, inject: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``nbx consume`` (optionally with a sink fault injected); output goes to files, so a
    chatty daemon never blocks on a full pipe."""
    module = "tests.verify.inject" if inject else "broker"
    n = len(_OUTPUT)
    out, err = config.parent / f"daemon-{n}.out", config.parent / f"daemon-{n}.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "consume", "--config", str(config), *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=o,
            stderr=e,
        )
    _OUTPUT[proc.pid] = (out, err)
    return proc


def _finish(proc: subprocess.Popen[bytes], timeout_s: float = 120) -> tuple[str, str]:
    """Wait for the daemon; its stdout and stderr (also added to the session's log capture)."""
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    out_path, err_path = _OUTPUT[proc.pid]
    out, err = out_path.read_bytes(), err_path.read_bytes()
    LOGS.add(out)
    LOGS.add(err)
    return out.decode(errors="replace"), err.decode(errors="replace")


async def _drain(
    config: Path, bootstrap: str, timeout_s: float = 300
) -> tuple[subprocess.Popen[bytes], str, str]:
    """Run FR's daemon (``nbx consume``) until its group has committed the end of its inbox and
    receipts topics (everything written to them was handled), then SIGTERM it: it finishes the
    batch in hand, commits and exits 0. A condition, where ``--until-idle 5`` waited five
    seconds after the last record. Nothing may be written to FR's topics meanwhile."""
    proc = _spawn(config)
    out_path = _OUTPUT[proc.pid][0]
    topics = ("nbx.inbox.FR", "nbx.receipts.FR")
    deadline = time.monotonic() + timeout_s
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            started = b"daemon.started" in out_path.read_bytes()  # its SIGTERM handler is set
            if started and await handled_everything(bootstrap, "nbx.FR", topics):
                break
            await asyncio.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.to_thread(_finish, proc, 60)
    return proc, out, err


def _events(text: str) -> list[dict[str, object]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _store(config_path: Path) -> tuple[list[str], dict[str, int]]:
    """(notice ids stored, delivered count per notice id) of a node's SQLite file."""
    from broker.node.config import NodeConfig

    # read-only: connecting must not create the file (with the umask's mode) before the daemon
    db = sqlite3.connect(f"file:{NodeConfig.load(config_path).sink_path()}?mode=ro", uri=True)
    try:
        stored = [n for (n,) in db.execute("SELECT notice_id FROM notices")]
        delivered = dict(
            db.execute(
                "SELECT notice_id, COUNT(*) FROM deliveries WHERE outcome = 'delivered' "
                "GROUP BY notice_id"
            ).fetchall()
        )
    finally:
        db.close()
    return stored, delivered


def _settle_store(sent: list[str], stored: list[str], delivered: dict[str, int], q: int) -> None:
    settle(
        len(sent) + q,
        len(set(stored) & set(sent)),
        q,
        lost=len(set(sent) - set(stored)),
        duplicated=sum(c - 1 for c in delivered.values()) + len(stored) - len(set(stored)),
    )


# --- SIGKILL at random points -----------------------------------------------------------------


@pytest.mark.parametrize("run", range(COUNTS.kill_seeds))
async def test_sigkill_at_random_points_with_poison_in_the_stream(
    run: int, fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """While IT publishes canary notices to FR and a stranger writes garbage between them, FR's
    daemon is SIGKILLed at random moments (seeded; seed in the failure message). After a final
    drain every notice is stored exactly once and every garbage record was quarantined (at least
    once: a kill between quarantine and commit repeats it, which loses nothing)."""
    await _sigkill_run(run, fresh_broker.bootstrap, idempotence_supported, tmp_path)


@pytest.mark.skipif(
    not SLOW,
    reason="slow profile only (make verify): the default run's TLS coverage is tests/tls",
)
async def test_sigkill_at_random_points_over_tls(
    tls_broker: tuple[TlsFront, Pki], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same run (one seed) with every client over TLS, the broker's certificate verified:
    IT's publisher and FR's daemons (``nbx consume`` processes, configured through
    ``NBX_KAFKA__*``) reach tansu only through stunnel (tests/tls/conftest.py), and so do the
    stranger's garbage and the independent quarantine reader."""
    front, pki = tls_broker
    for key, value in {
        "SECURITY_PROTOCOL": "SSL",
        "SSL_CAFILE": str(pki.path("ca.pem")),
        "REQUIRE_LOG_APPEND_TIME": "false",  # tansu keeps the producer's timestamps
        "PACE_EMPTY_FETCHES": "false",
    }.items():
        monkeypatch.setenv(f"NBX_KAFKA__{key}", value)
    await _sigkill_run(
        COUNTS.kill_seeds, front.bootstrap("tls"), False, tmp_path, tls=pki.path("ca.pem")
    )
    assert "Service [tls] accepted connection" in front.log_text()


async def _sigkill_run(
    run: int,
    bootstrap: str,
    idempotence: bool,
    tmp_path: Path,
    *,
    tls: Path | None = None,
    store_url: str | None = None,
) -> None:
    """One seed of the SIGKILL scenario (see the tests above); ``tls``: the CA file when the
    broker is reached over TLS; ``store_url``: FR's store in that PostgreSQL database instead of
    its SQLite file (tests/verify/test_postgres_faults.py)."""
    seed = BASE_SEED + run + (0 if store_url is None else 2000)
    rng = random.Random(seed)
    net = Net(tmp_path, ("IT", "FR"), bootstrap, idempotence=idempotence)
    config = net.paths["FR"]
    if store_url is not None:
        use_store(config, store_url)
        await net.ensure_topics("IT", "FR")
    count = COUNTS.kill_notices
    prefix = "K" if store_url is None else "P"
    notices = [canary_notice(f"IT-2026-{prefix}{run}{i:04d}") for i in range(count)]
    garbage = 0

    async def publish_all() -> list[str]:
        nonlocal garbage
        sent: list[str] = []
        async with net.publisher("IT") as pub:
            for i in range(0, count, 20):
                results = await asyncio.gather(
                    *(pub.publish(n, ["FR"]) for n in notices[i : i + 20])
                )
                sent += [r.notice_id for r in results if r.sent == ["FR"]]
                junk = [rng.randbytes(rng.randrange(1, 300)) for _ in range(rng.randrange(1, 4))]
                await produce_raw(
                    bootstrap, [("nbx.inbox.FR", None, j, []) for j in junk], tls_cafile=tls
                )
                garbage += len(junk)
                await asyncio.sleep(rng.uniform(0.0, 0.2))
        return sent

    publishing = asyncio.create_task(publish_all())
    kills = 0
    for _ in range(COUNTS.kills_per_seed):
        proc = _spawn(config)
        await asyncio.sleep(rng.uniform(0.5, 3.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        await asyncio.to_thread(_finish, proc)
    sent = await publishing
    if tls is None:
        drain, _out, err = await _drain(config, bootstrap)
    else:  # tansu answers ListOffsets with 0: no committed-offsets condition, an idle wait
        drain = _spawn(config, "--until-idle", "5")
        _out, err = await asyncio.to_thread(_finish, drain, 300)
    if store_url is not None:
        TALLY.fault("daemon SIGKILL (PostgreSQL store)", kills)
    else:
        TALLY.fault("daemon SIGKILL" if tls is None else "daemon SIGKILL over TLS", kills)
    if drain.returncode != 0:
        TALLY.count("crashes")
    if store_url is None:
        stored, delivered = _store(config)
    else:
        store = Store(config)
        stored, delivered = store.notice_ids(), store.delivered()
    quarantine = await asyncio.to_thread(
        lambda: read_all(bootstrap, "nbx.quarantine.FR", expect=garbage, tls_cafile=tls)
    )
    sources = {dict(h)["nbx-source"] for _, _, h in quarantine}
    _settle_store(sent, stored, delivered, len(sources))
    TALLY.input("inbox record values", garbage)
    assert drain.returncode == 0, f"seed {seed}: {err[-2000:]}"
    assert kills >= 1, f"seed {seed}"
    assert len(sent) == count, f"seed {seed}: the publisher could not send every notice"
    assert sorted(stored) == sorted(sent), f"seed {seed}: lost or extra notices"
    assert all(c == 1 for c in delivered.values()), f"seed {seed}: a notice was delivered twice"
    assert len(sources) == garbage, (
        f"seed {seed}: {garbage} garbage records, {len(sources)} quarantined"
    )


@pytest.fixture
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TlsFront, Pki]]:
    """stunnel in front of a fresh tansu for one test (clean topics and groups), and the test
    certificates (tests/tls/conftest.py)."""
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    front = start_front(pki, tmp_path_factory.mktemp("stunnel"))
    try:
        yield front, pki
    finally:
        front.stop()


#: what happens to each notice of the safeguard stream, and the state it ends in (the states an
#: uninterrupted recipient must reach too): ``approve`` / ``refuse`` the current version,
#: ``block`` / ``unblock`` / ``delete`` by the oversight body, ``update`` to version 2
SCRIPTS: dict[str, tuple[tuple[str, ...], str, int]] = {
    "pending": ((), "pending-review", 1),
    "approved": (("approve",), "actionable", 1),
    "refused": (("refuse",), "refused", 1),
    "blocked": (("approve", "block"), "blocked", 1),
    "unblocked": (("approve", "block", "unblock"), "actionable", 1),
    "deleted": (("block", "delete"), "purged", 1),
    "updated": (("approve", "update"), "pending-review", 2),
    "updated and approved": (("update", "approve"), "actionable", 2),
    "blocked, then updated": (("approve", "block", "update", "approve"), "blocked", 2),
}
SAFEGUARD_BUREAUS = ("IT", "FR", "DE", "XR", "XO")


def _final(config_path: Path) -> tuple[dict[str, tuple[str, int, str, bool]], set[tuple[str, str]]]:
    """A node's final notice states (notice id -> state, version, msg id, view kept) and the
    (sender, msg id) of every message it recorded, read from its SQLite file."""
    from broker.node.config import NodeConfig

    db = sqlite3.connect(f"file:{NodeConfig.load(config_path).sink_path()}?mode=ro", uri=True)
    try:
        states = {
            n: (s, v, m, view is not None)
            for n, s, v, m, view in db.execute(
                "SELECT notice_id, state, version, msg_id, view FROM notices"
            )
        }
        seen = set(db.execute("SELECT sender, msg_id FROM deliveries").fetchall())
    finally:
        db.close()
    return states, seen


def _facts(config_path: Path) -> list[tuple[str, str]]:
    """(by bureau, msg id) of every stored fact, one row per fact (a duplicate would show)."""
    from broker.node.config import NodeConfig

    db = sqlite3.connect(f"file:{NodeConfig.load(config_path).sink_path()}?mode=ro", uri=True)
    try:
        return sorted(db.execute("SELECT by_bureau, msg_id FROM facts").fetchall())
    finally:
        db.close()


@pytest.mark.parametrize("run", range(COUNTS.kill_seeds))
async def test_sigkill_with_reviews_blocks_unblocks_and_deletes_in_the_stream(
    run: int, fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """IT publishes notices to FR and DE that need review; XR approves or refuses, XO blocks,
    unblocks and deletes, IT updates, and a stranger writes garbage into FR's inbox, while FR's
    daemon is SIGKILLed at random moments (seeded) and DE's runs uninterrupted. After a final
    drain FR's final notice states equal DE's and the scripted ones: nothing lost, nothing
    stored twice, no fact applied twice."""
    seed = BASE_SEED + 1000 + run
    rng = random.Random(seed)
    bootstrap = fresh_broker.bootstrap
    roles = {"XR": ["reviewer"], "XO": ["oversight"]}
    net = Net(
        tmp_path, SAFEGUARD_BUREAUS, bootstrap, idempotence=idempotence_supported, roles=roles
    )
    await net.ensure_topics(*SAFEGUARD_BUREAUS)
    config = net.paths["FR"]
    count = max(COUNTS.kill_notices // 2, len(SCRIPTS))
    names = sorted(SCRIPTS)
    plan = [names[i % len(names)] for i in range(count)]
    rng.shuffle(plan)
    notices = [canary_notice(f"IT-2026-Q{run}{i:04d}") for i in range(count)]
    to = ["DE", "FR"]
    sent: set[tuple[str, str]] = set()  # (sender, msg id) of every message sent to FR and DE
    garbage = 0

    def record(sender: str, result: PublishResult) -> PublishResult:
        assert sorted(set(result.sent) & set(to)) == to, f"seed {seed}: {result.outcomes}"
        sent.add((sender, result.msg_id))
        return result

    async def one(i: int, it: Publisher, xr: Publisher, xo: Publisher) -> None:
        """Notice ``i``'s script, step after step."""
        notice = notices[i]
        current = record("IT", await it.publish(notice, to))
        for step in SCRIPTS[plan[i]][0]:
            if step == "update":
                update = notice.model_copy(update={"version": 2})
                current = record("IT", await it.publish(update, to))
            elif step in ("approve", "refuse"):
                refused = step == "refuse"
                result = await xr.review(
                    subject_sender="IT",
                    subject_msg_id=current.msg_id,
                    notice_id=notice.notice_id,
                    notice_type="red",
                    statement_hash=current.statement_hash or "",
                    decision="refused" if refused else "approved",
                    grounds=["art3"] if refused else [],
                    reason="checked against the rules",
                    to=[*to, "IT"],
                )
                record("XR", result)
            else:
                result = await xo.oversight(
                    step,  # type: ignore[arg-type]
                    subject_sender="IT",
                    notice_id=notice.notice_id,
                    notice_type="red",
                    case_ref=f"CCF-2026-{i}",
                    reason=None if step == "unblock" else "challenge pending",
                    to=[*to, "IT"],
                )
                record("XO", result)

    async def send_all() -> None:
        nonlocal garbage
        async with net.publisher("IT") as it, net.publisher("XR") as xr, net.publisher("XO") as xo:
            for i in range(0, count, 10):
                await asyncio.gather(*(one(j, it, xr, xo) for j in range(i, min(i + 10, count))))
                junk = [rng.randbytes(rng.randrange(1, 300)) for _ in range(rng.randrange(1, 4))]
                await produce_raw(bootstrap, [("nbx.inbox.FR", None, j, []) for j in junk])
                garbage += len(junk)
                await asyncio.sleep(rng.uniform(0.0, 0.2))

    await net.start("DE")  # the uninterrupted run
    try:
        sending = asyncio.create_task(send_all())
        kills = 0
        for _ in range(COUNTS.kills_per_seed):
            proc = _spawn(config)
            await asyncio.sleep(rng.uniform(0.5, 3.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            await asyncio.to_thread(_finish, proc)
        await sending
        drain, _out, err = await _drain(config, bootstrap)
        de_done = await wait_for(
            lambda: _final(net.paths["DE"])[1] >= sent or net.tasks["DE"].done(), timeout_s=120
        )
        de_crashed = net.tasks["DE"].done()
    finally:
        await net.stop()
    TALLY.fault("daemon SIGKILL (safeguard stream)", kills)
    if drain.returncode != 0 or de_crashed:
        TALLY.count("crashes")
    fr_states, fr_seen = _final(config)
    de_states, de_seen = _final(net.paths["DE"])
    fr_facts, de_facts = _facts(config), _facts(net.paths["DE"])
    quarantine = await asyncio.to_thread(read_all, bootstrap, "nbx.quarantine.FR", expect=garbage)
    sources = {dict(h)["nbx-source"] for _, _, h in quarantine}
    scripted = {n.notice_id: SCRIPTS[p][1:] for n, p in zip(notices, plan, strict=True)}
    settle(
        len(sent) + garbage,
        len(sent & fr_seen),
        len(sources),
        lost=len(sent - fr_seen),
        duplicated=len(fr_facts) - len(set(fr_facts)) + len(fr_seen - sent),
    )
    TALLY.input("inbox record values", garbage)
    TALLY.input("safeguard stream messages", len(sent))
    assert drain.returncode == 0, f"seed {seed}: {err[-2000:]}"
    assert not de_crashed, f"seed {seed}: the uninterrupted daemon stopped"
    assert de_done, f"seed {seed}: the uninterrupted daemon did not finish"
    assert kills >= 1, f"seed {seed}"
    lost, extra = len(sent - fr_seen), len(fr_seen - sent)
    assert fr_seen == sent, f"seed {seed}: lost {lost}, extra {extra}"
    assert de_seen == sent, f"seed {seed}"
    assert {n: s[:2] for n, s in de_states.items()} == scripted, f"seed {seed}"
    assert fr_states == de_states, f"seed {seed}: FR's final states differ from DE's"
    assert fr_facts == de_facts, f"seed {seed}: FR's stored facts differ from DE's"
    assert len(set(fr_facts)) == len(fr_facts), f"seed {seed}: a fact stored twice"
    assert len(sources) == garbage, (
        f"seed {seed}: {garbage} garbage records, {len(sources)} quarantined"
    )


# --- broker stop/start mid-stream -------------------------------------------------------------


async def test_broker_restart_mid_stream_loses_and_duplicates_nothing(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """The broker is stopped and started again (same port, same data) while FR's daemon is in the
    middle of a backlog; the daemon keeps running, and after more notices arrive every notice is
    stored exactly once."""
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence_supported)
    half = COUNTS.restart_notices // 2
    notices = [canary_notice(f"IT-2026-R{i:04d}") for i in range(2 * half)]
    async with net.publisher("IT") as pub:
        for i in range(0, half, 20):
            await asyncio.gather(*(pub.publish(n, ["FR"]) for n in notices[i : min(i + 20, half)]))
    await net.start("FR")
    fr = net.daemon("FR")
    try:
        assert await wait_for(lambda: fr.stats.delivered >= 1, timeout_s=60)
        await asyncio.to_thread(fresh_broker.restart)
        TALLY.fault("broker stop/start")
        async with net.publisher("IT") as pub:
            for i in range(half, 2 * half, 20):
                await asyncio.gather(*(pub.publish(n, ["FR"]) for n in notices[i : i + 20]))
        ok = await wait_for(
            lambda: len(fr.sink.notices()) >= 2 * half or net.tasks["FR"].done(), timeout_s=180
        )
        crashed = net.tasks["FR"].done()
    finally:
        await net.stop()
    if crashed:
        TALLY.count("crashes")
    stored, delivered = _store(net.paths["FR"])
    sent = [n.notice_id for n in notices]
    _settle_store(sent, stored, delivered, 0)
    assert ok
    assert not crashed
    assert sorted(stored) == sorted(sent)
    assert all(c == 1 for c in delivered.values())


# --- broker unreachable at start-up -----------------------------------------------------------


async def test_daemon_waits_for_an_unreachable_broker_with_backoff(
    idempotence_supported: bool, tmp_path: Path
) -> None:
    """FR's daemon starts while no broker listens on its bootstrap: it keeps running, logs
    'transport.retry' with a growing retry_in_s, and once the broker comes up it delivers what
    IT publishes."""
    port = devbroker.free_port()
    bootstrap = f"127.0.0.1:{port}"
    net = Net(tmp_path, ("IT", "FR"), bootstrap, idempotence=idempotence_supported)
    proc = _spawn(net.paths["FR"])
    out_path = _OUTPUT[proc.pid][0]
    store = net.configs["FR"].sink_path()
    broker = None
    try:
        # three retries logged (0.5 s, 1 s, 2 s apart), not a guess at how long they take
        await wait_for(
            lambda: (
                out_path.read_bytes().count(b'"event": "transport.retry"') >= 3
                or proc.poll() is not None
            ),
            timeout_s=60,
        )
        TALLY.fault("broker unreachable at start-up")
        alive = proc.poll() is None
        broker = await asyncio.to_thread(devbroker.start, broker_impl(), port=port, timeout_s=60)
        notice = canary_notice("IT-2026-U0001")
        await net.publish("IT", notice, ["FR"])
        # the daemon creates its store once it reached the broker: read it only then
        await wait_for(lambda: store.exists() and bool(_store(net.paths["FR"])[0]), timeout_s=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(_finish, proc, 60)
        if broker is not None:
            broker.stop()
    retries = [e for e in _events(out) if e.get("event") == "transport.retry"]
    stored, delivered = _store(net.paths["FR"])
    _settle_store([notice.notice_id], stored, delivered, 0)
    assert alive, f"the daemon gave up instead of retrying: {err.strip()}"
    assert len(retries) >= 2
    waits = [float(e["retry_in_s"]) for e in retries]  # type: ignore[arg-type]
    assert waits[1] > waits[0], waits
    assert stored == [notice.notice_id]
    assert proc.returncode == 0, err


def test_connect_timeout_gives_one_clear_error_line(tmp_path: Path) -> None:
    """With --connect-timeout 3 and no broker, the daemon retries, then prints exactly one line
    'nbx: error: ...' naming the bootstrap on stderr and exits 1 (no traceback)."""
    bootstrap = f"127.0.0.1:{devbroker.free_port()}"
    net = Net(tmp_path, ("FR",), bootstrap, idempotence=False)
    TALLY.fault("broker unreachable at start-up")
    started = time.monotonic()
    proc = _spawn(net.paths["FR"], "--connect-timeout", "3")
    out, err = _finish(proc, 60)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 1, err
    assert len(lines) == 1, err
    assert lines[0].startswith("nbx: error:"), err
    assert bootstrap in lines[0]
    assert any(e.get("event") == "transport.retry" for e in _events(out))
    assert time.monotonic() - started < 30


# --- failing sink -----------------------------------------------------------------------------

SINK_FAILURES = {
    "read-only": "attempt to write a readonly database",
    "disk-full": "database or disk is full",
}
FAILURE_KINDS = list(SINK_FAILURES) if SLOW else ["read-only"]


async def _sink_failure_run(
    kind: str, fresh_broker: devbroker.DevBroker, idempotence: bool, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], str, str, list[str], list[str]]:
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence)
    notices = [canary_notice(f"IT-2026-S{i:04d}") for i in range(20)]
    async with net.publisher("IT") as pub:
        await asyncio.gather(*(pub.publish(n, ["FR"]) for n in notices))
    env = {"NBX_INJECT_SINK_FAIL_AT": "8", "NBX_INJECT_SINK_FAIL_MSG": SINK_FAILURES[kind]}
    proc = _spawn(net.paths["FR"], "--until-idle", "5", env=env, inject=True)
    out, err = await asyncio.to_thread(_finish, proc, 120)
    TALLY.fault(f"sink failure ({kind})")
    at_failure, _ = _store(net.paths["FR"])
    drain, _, drain_err = await _drain(net.paths["FR"], fresh_broker.bootstrap, 120)
    assert drain.returncode == 0, drain_err
    stored, delivered = _store(net.paths["FR"])
    sent = [n.notice_id for n in notices]
    _settle_store(sent, stored, delivered, 0)
    assert sorted(stored) == sorted(sent), "a record was lost across the sink failure"
    assert all(c == 1 for c in delivered.values())
    return proc, out, err, at_failure, sent


@pytest.mark.parametrize("kind", FAILURE_KINDS)
async def test_sink_failure_loses_nothing_and_is_reported_clearly(
    kind: str, fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """The sink fails on the 8th notice of 20 (read-only file / full disk): the daemon stops
    (delivering nothing after the failure) without committing the failed record, and a restart
    with a writable sink delivers all 20 exactly once. It stops with exit code 3, one
    'nbx: error: ...' line on stderr (no traceback) and a 'sink.failed' log event carrying a
    reason. (One run for both: they were two tests running the same scenario.)"""
    proc, out, err, at_failure, _sent = await _sink_failure_run(
        kind, fresh_broker, idempotence_supported, tmp_path
    )
    assert proc.returncode != 0, "the daemon went on as if the sink had stored the record"
    # the batch holding the failed record is rolled back as a whole: nothing at or after it
    assert len(at_failure) <= 7, f"the daemon kept consuming after the sink failed: {err[-500:]}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 3, err[-1000:]
    assert len(lines) == 1, err[-1000:]
    assert lines[0].startswith("nbx: error:"), err[-1000:]
    failed = [e for e in _events(out) if e.get("event") == "sink.failed"]
    assert failed, out[-1000:]
    assert failed[0].get("reason"), out[-1000:]


# --- slow sink --------------------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def test_slow_sink_keeps_memory_bounded(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """A backlog of notices waits while the sink takes 20 ms per notice: the daemon's resident
    memory stays within a fixed bound (it does not read the backlog ahead into memory), and
    every notice is delivered exactly once in the end."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "FR"), bootstrap, idempotence=idempotence_supported)
    count = COUNTS.slow_sink_notices
    notices = [canary_notice(f"IT-2026-W{i:05d}") for i in range(count)]
    async with net.publisher("IT") as pub:
        for i in range(0, count, 50):
            await asyncio.gather(*(pub.publish(n, ["FR"]) for n in notices[i : i + 50]))
    env = {"NBX_INJECT_SINK_DELAY_S": "0.02"}
    proc = _spawn(net.paths["FR"], env=env, inject=True)
    TALLY.fault("slow sink")
    samples: list[tuple[int, int]] = []
    baseline = 0
    config = net.paths["FR"]
    out_path = _OUTPUT[proc.pid][0]
    stopping = False
    try:
        while proc.poll() is None and not stopping:
            await asyncio.sleep(0.5)
            try:
                rss = _rss_kib(proc.pid)
                done = len(_store(config)[0])
                started = b"daemon.started" in out_path.read_bytes()
            except (OSError, sqlite3.Error):
                continue
            if started and not baseline:
                baseline = rss
            elif started:
                samples.append((done, rss))
            topics = ("nbx.inbox.FR", "nbx.receipts.FR")
            if done >= count and await handled_everything(bootstrap, "nbx.FR", topics):
                proc.send_signal(signal.SIGTERM)  # all handled: it commits and exits 0
                stopping = True
    finally:
        if proc.poll() is None and not stopping:
            proc.kill()
        _out, err = await asyncio.to_thread(_finish, proc, 600)
    stored, delivered = _store(config)
    sent = [n.notice_id for n in notices]
    _settle_store(sent, stored, delivered, 0)
    assert proc.returncode == 0, err[-1000:]
    waiting = [rss for done, rss in samples if done < count]
    assert len(waiting) >= 3, "the backlog drained too fast to measure"
    growth_mib = (max(rss for _, rss in samples) - baseline) / 1024
    assert growth_mib < 48, f"memory grew by {growth_mib:.0f} MiB while {count} notices waited"
    assert sorted(stored) == sorted(sent)
    assert all(c == 1 for c in delivered.values())


async def test_slow_sink_batches_are_bounded(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """With a slow sink and max_batch = 25, the daemon never handles more than 25 records in one
    batch (so at most 25 records are held between fetch and commit)."""
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence_supported)
    notices = [canary_notice(f"IT-2026-B{i:04d}") for i in range(120)]
    async with net.publisher("IT") as pub:
        await asyncio.gather(*(pub.publish(n, ["FR"]) for n in notices))
    fr = net.daemon("FR")
    fr.max_batch = 25
    sizes: list[int] = []
    begin, apply = fr.sink.begin, fr.sink.apply

    def counting_begin() -> None:  # one sink batch per poll: count the records it applies
        sizes.append(0)
        begin()

    def slow_apply(*args: Any, **kwargs: Any) -> Applied:
        sizes[-1] += 1
        time.sleep(0.005)
        return apply(*args, **kwargs)

    fr.sink.begin = counting_begin  # type: ignore[method-assign]
    fr.sink.apply = slow_apply  # type: ignore[method-assign]
    await net.start("FR")
    try:
        assert await wait_for(lambda: fr.stats.delivered >= 120, timeout_s=120)
    finally:
        await net.stop()
    settle(120, fr.stats.delivered, 0, lost=120 - fr.stats.delivered, duplicated=0)
    assert max(sizes) <= 25, sizes
