"""`nbx network init` (what it writes, what it refuses, one `nbx: error:` line each) and
`nbx network up` (broker and daemons started, ready lines, SIGINT stops every child, exit 0)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest

from broker import devbroker
from broker.node.config import NodeConfig
from broker.node.runtime import load_node
from tests.conftest import broker_impl
from tests.node.test_cli_node import nbx_in_process

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]


def nbx(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``nbx`` as a new process (the refusals and the init before `up` run in this process:
    :func:`nbx_in_process`, the same command, output and exit code)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "broker", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def test_init_writes_one_anchor_one_directory_and_a_ready_node_per_bureau(tmp_path: Path) -> None:
    net = tmp_path / "net"
    out = nbx("network", "init", str(net), "--bureaus", "it,FR,DE,ES")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:5] == [
        *(f"wrote {net / cc / 'node.toml'}" for cc in ("IT", "FR", "DE", "ES")),
        f"network of 4 bureaus in {net}: IT, FR, DE, ES",
    ]
    assert f"  nbx network up {net}" in lines
    assert (
        f"  nbx publish --config {net / 'IT' / 'node.toml'} {net / 'notices' / 'red.json'} "
        "--to FR,DE,ES"
    ) in lines
    manifest = tomllib.loads((net / "network.toml").read_text())
    assert manifest == {
        "bureaus": ["IT", "FR", "DE", "ES"],
        "broker": "noida",
        "bootstrap": "127.0.0.1:19092",
    }
    assert sorted(p.name for p in (net / "policies").glob("*.toml")) == sorted(
        p.name for p in (ROOT / "deploy" / "policies").glob("*.toml")
    )
    assert (net / "notices" / "red.json").is_file()
    for cc in ("IT", "FR", "DE", "ES"):
        config = NodeConfig.load(net / cc / "node.toml")
        assert Path(config.trust.directory).resolve() == (net / "directory.json").resolve()
        assert Path(config.policy.dir).resolve() == (net / "policies").resolve()
        node = load_node(config)
        assert node.keys.bureau == cc
        assert node.directory.bureau_ids() == ["DE", "ES", "FR", "IT"]
        assert (net / cc / "keys" / f"{cc}.signing.key").stat().st_mode & 0o077 == 0
    # noida-db (the default development broker): paced idle fetches, broker time stamps
    toml = (net / "IT" / "node.toml").read_text()
    assert "pace_empty_fetches = true  #" in toml
    assert "require_log_append_time = true\n" in toml


def test_init_for_tansu_and_for_an_apache_kafka_cluster(tmp_path: Path) -> None:
    """--impl tansu writes nodes tansu can serve; a non-loopback --bootstrap means a Kafka
    cluster the operator runs, and the next steps are one `nbx consume` per bureau."""
    tansu = tmp_path / "tansu"
    assert (
        nbx("network", "init", str(tansu), "--bureaus", "IT,FR", "--impl", "tansu").returncode == 0
    )
    toml = (tansu / "FR" / "node.toml").read_text()
    assert "require_log_append_time = false\n" in toml
    assert "enable_idempotence = false\n" in toml
    kafka = tmp_path / "kafka"
    out = nbx(
        "network", "init", str(kafka), "--bureaus", "IT,FR", "--bootstrap", "kafka.example:9092"
    )
    assert out.returncode == 0, out.stderr
    assert f"  nbx consume --config {kafka / 'FR' / 'node.toml'}" in out.stdout.splitlines()
    assert 'broker = "kafka"' in (kafka / "network.toml").read_text()
    assert NodeConfig.load(kafka / "FR" / "node.toml").kafka.bootstrap == "kafka.example:9092"
    up = nbx("network", "up", str(kafka))
    assert up.returncode == 1
    assert up.stderr.strip() == (
        f"nbx: error: {kafka / 'network.toml'}: written for the Kafka cluster at "
        "kafka.example:9092; `nbx network up` runs a development broker only: start each daemon "
        "with `nbx consume --config DIR/CC/node.toml`"
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--bureaus", "IT"), "--bureaus: a network needs at least two bureaus, got 1 ('IT')"),
        (("--bureaus", "IT,FR,it"), "--bureaus: IT given twice"),
        (("--bureaus", "IT,QQ"), "--bureaus: unknown ISO 3166-1 alpha-2 country code 'QQ'"),
        (
            ("--bureaus", "IT,FRA"),
            "--bureaus: invalid bureau id 'FRA': expected two upper-case letters such as FR",
        ),
        (
            ("--bureaus", "IT,FR", "--bootstrap", "localhost"),
            "--bootstrap: expected HOST:PORT such as 127.0.0.1:19092, got 'localhost'",
        ),
        (("--bureaus", "IT,FR", "--policies", "{tmp}/none"), "{tmp}/none: policy folder not found"),
        (
            ("--bureaus", "IT,FR", "--policies", "{tmp}"),
            "{tmp}: no policy file (*.toml) in the folder",
        ),
    ],
)
def test_init_refuses_bad_input_with_one_line_and_writes_nothing(
    tmp_path: Path, args: tuple[str, ...], error: str
) -> None:
    net = tmp_path / "net"
    out = nbx_in_process("network", "init", str(net), *(a.format(tmp=tmp_path) for a in args))
    assert out.returncode == 1
    assert out.stderr == f"nbx: error: {error.format(tmp=tmp_path)}\n"
    assert not net.exists()


def test_init_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    out = nbx_in_process("network", "init", str(tmp_path), "--bureaus", "IT,FR")
    assert out.returncode == 1
    assert out.stderr == f"nbx: error: {tmp_path}: already exists and is not empty\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_up_refuses_a_folder_without_a_network(tmp_path: Path) -> None:
    out = nbx_in_process("network", "up", str(tmp_path))
    assert out.returncode == 1
    assert out.stderr == (
        f"nbx: error: {tmp_path / 'network.toml'}: not found "
        f"(create the network with `nbx network init {tmp_path}`)\n"
    )


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.e2e
def test_up_starts_the_broker_and_every_daemon_and_sigint_stops_them_all(tmp_path: Path) -> None:
    """`nbx network up` prints the broker's and each daemon's pid, a ready line per bureau and
    the network-up line (plain lines: not a terminal), each daemon line prefixed with its
    bureau; SIGINT stops every daemon and the broker (their pids are gone) and it exits 0."""
    net = tmp_path / "net"
    bootstrap = f"127.0.0.1:{devbroker.free_port()}"
    init = nbx("network", "init", str(net), "--bureaus", "IT,FR,DE", "--bootstrap", bootstrap,
               "--impl", broker_impl())  # fmt: skip
    assert init.returncode == 0, init.stderr
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    up = subprocess.Popen(
        [sys.executable, "-m", "broker", "network", "up", str(net)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    network_up = threading.Event()

    def read() -> None:
        assert up.stdout is not None
        for line in up.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("network up: "):
                network_up.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert network_up.wait(timeout=180), lines
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=120)
    reader.join(timeout=30)
    assert up.stderr is not None
    err = up.stderr.read()
    up.stderr.close()
    if up.stdout is not None:
        up.stdout.close()
    assert up.returncode == 0, (err, lines)
    assert err == ""
    plain = [line for line in lines if not re.match(r"\[[A-Z]{2}\] [{\[]", line)]
    assert plain[0] == f"starting the {broker_impl()} broker on {bootstrap}"
    broker_line = re.fullmatch(rf"broker {broker_impl()} pid (\d+) ready on {bootstrap}", plain[1])
    assert broker_line is not None, plain
    broker_pid = int(broker_line[1])
    assert plain[2] == (  # for a bureau that joins (nbx node join): it reads the topic
        "published the directory (serial 4) to nbx.directory for bureaus that join; after each "
        f"change the anchor publishes it again: nbx directory publish {net / 'directory.json'} "
        f"--anchor {net / 'anchor' / 'trust-anchor.pub'} --bootstrap {bootstrap}"
    )
    pids = {}
    for line in plain:
        started = re.fullmatch(r"\[([A-Z]{2})\] daemon pid (\d+) started", line)
        if started:
            pids[started[1]] = int(started[2])
    assert sorted(pids) == ["DE", "FR", "IT"]
    ready = [line.split() for line in plain if " ready (" in line]
    assert [r[2] for r in ready] == ["(1/3)", "(2/3)", "(3/3)"]
    assert sorted(r[0] for r in ready) == ["DE", "FR", "IT"]
    assert (
        f"network up: 3 bureaus on {bootstrap}; from another terminal: nbx publish --config "
        f"{net / 'IT' / 'node.toml'} {net / 'notices' / 'red.json'} --to FR,DE; "
        "Ctrl-C stops everything"
    ) in plain
    assert plain[-1] == f"stopped 3 daemons and the broker (pid {broker_pid})"
    for cc in ("IT", "FR", "DE"):  # each daemon's own lines, prefixed, ending in a clean stop
        own = [line for line in lines if line.startswith(f"[{cc}] {{")]
        assert any('"event": "daemon.started"' in line for line in own), cc
        assert any('"event": "daemon.stopped"' in line for line in own), cc
    assert all(_gone(pid) for pid in (broker_pid, *pids.values()))


def _init_for_up(tmp_path: Path) -> tuple[Path, str]:
    net = tmp_path / "net"
    bootstrap = f"127.0.0.1:{devbroker.free_port()}"
    args = ("--bureaus", "IT,FR", "--bootstrap", bootstrap, "--impl", broker_impl())
    init = nbx_in_process("network", "init", str(net), *args)
    assert init.returncode == 0, init.stderr
    return net, bootstrap


@pytest.mark.e2e
def test_up_stops_everything_and_exits_1_when_a_daemon_dies(tmp_path: Path) -> None:
    """A daemon that exits by itself (here: FR's node file is broken) stops the network: one
    `nbx: error:` line naming it, every other child and the broker stopped, exit 1."""
    net, _ = _init_for_up(tmp_path)
    (net / "FR" / "node.toml").write_text('bureau = "FR"\n[kafka\n')
    up = nbx("network", "up", str(net))
    assert up.returncode == 1, (up.stdout, up.stderr)
    errors = up.stderr.splitlines()
    assert len(errors) == 1
    assert re.fullmatch(
        r"nbx: error: FR's daemon \(pid \d+\) exited with code 1; stopping the network", errors[0]
    ), errors
    started = dict(re.findall(r"^\[([A-Z]{2})\] daemon pid (\d+) started$", up.stdout, re.M))
    broker = re.search(r"^stopped 2 daemons and the broker \(pid (\d+)\)$", up.stdout, re.M)
    assert broker is not None, up.stdout
    assert sorted(started) == ["FR", "IT"]
    assert all(_gone(int(pid)) for pid in (broker[1], *started.values()))


@pytest.mark.e2e
def test_up_on_a_terminal_colours_the_prefixes(tmp_path: Path) -> None:
    """On a terminal the `[CC]` prefixes are coloured (ANSI) and start-up shows a rich progress
    display; the run ends as without a terminal (SIGINT: everything stopped, exit 0)."""
    import pty

    net, _ = _init_for_up(tmp_path)
    main, child = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    up = subprocess.Popen(
        [sys.executable, "-m", "broker", "network", "up", str(net)],
        stdin=subprocess.DEVNULL, stdout=child, stderr=child, env=env,
    )  # fmt: skip
    os.close(child)
    seen = b""
    try:
        while b"network up: " not in seen:
            chunk = os.read(main, 65536)
            assert chunk, seen
            seen += chunk
    finally:
        up.send_signal(signal.SIGINT)
    with contextlib.suppress(OSError):  # EIO once the last writer is gone
        while chunk := os.read(main, 65536):
            seen += chunk
    os.close(main)
    assert up.wait(timeout=120) == 0
    text = seen.decode(errors="replace")
    assert re.search(r"\x1b\[[0-9;]*m\[IT\]\x1b\[0m", text), text[-2000:]
    assert re.search(r"\x1b\[[0-9;]*m\[FR\]\x1b\[0m", text)
    assert "starting the network" in text  # the rich progress display's first step
    assert "stopped 2 daemons and the broker" in text
