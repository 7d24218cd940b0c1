"""The `nbx` command: lists its commands, and reports an unreachable broker in one clear line."""

from __future__ import annotations

import subprocess
import sys

from broker import devbroker


def _nbx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_the_commands() -> None:
    """`nbx --help` names every top-level command."""
    out = _nbx("--help")
    assert out.returncode == 0
    for command in ("demo", "dev-broker", "ping"):
        assert f"  {command} " in out.stdout


def test_unreachable_broker_is_one_clear_line() -> None:
    """Pointing at a port where nothing listens gives one stderr line and exit 1, no traceback."""
    port = devbroker.free_port()
    out = _nbx("ping", f"127.0.0.1:{port}")
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"nbx: error: cannot reach the Kafka broker at 127.0.0.1:{port} (KafkaConnectionError); "
        "check bootstrap servers and that the broker is running"
    ]
    assert "Traceback" not in out.stdout + out.stderr


def test_ping_lists_nbx_topics(kafka_bootstrap: str) -> None:
    """`nbx ping` against the real broker answers and exits 0."""
    out = _nbx("ping", kafka_bootstrap)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"broker at {kafka_bootstrap} answered")


def test_the_command_table_names_every_command_of_its_module() -> None:
    """COMMAND_MODULES maps each command to the module that registers it, and every command a
    module registers is in the table (a new command cannot be forgotten)."""
    from broker.cli import COMMAND_MODULES, load_commands

    registered: dict[str, str] = {}
    for module in sorted(set(COMMAND_MODULES.values())):
        for name in load_commands(module):
            registered[name] = module
    assert registered == COMMAND_MODULES


def test_a_command_imports_only_its_own_module() -> None:
    """`nbx inbox` does not import the schema, key or benchmark commands (start-up time)."""
    code = (
        "import sys; from broker.cli import main\n"
        "try:\n    main(['inbox', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('broker.cli.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.splitlines()[-1] == "['broker.cli.node_cmds']"
