"""The README's "Python API" example runs as written, on the real broker, and prints what the
README says it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- service.py:"


def readme_section() -> str:
    """The README's "Python API" section."""
    text = (ROOT / "README.md").read_text()
    start = text.index("## Python API")
    return text[start : text.index("\n## ", start + 1)]


def service_program(section: str) -> str:
    """The python block that follows the ``service.py`` marker."""
    after = section[section.index(MARKER) :]
    match = re.search(r"```python\n(.*?)```", after, re.S)
    assert match is not None, "no python block after the service.py marker"
    return match.group(1)


def promised_output(section: str) -> list[str]:
    """The lines the README says the program prints ("It prints `a`, then `b`")."""
    match = re.search(r"It prints `([^`]+)`, then `([^`]+)`", section)
    assert match is not None, "the README does not say what the program prints"
    return [match.group(1), match.group(2)]


def shell_commands(section: str) -> list[str]:
    """The commands of the section's ``sh`` block, comments removed."""
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None
    return [line.split("#")[0].strip() for line in match.group(1).splitlines()]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=180)


def test_readme_program_is_complete() -> None:
    """The program imports what it uses from the front door and the README runs it as shown."""
    section = readme_section()
    program = service_program(section)
    compile(program, "service.py", "exec")
    assert "from broker import " in program
    commands = shell_commands(section)
    assert commands[0] == "nbx dev-broker --port 9092 &"
    assert commands[1] == "nbx node init IT FR --dir net --dev-broker noida"
    assert commands[2] == (
        "python service.py net/IT/node.toml net/FR/node.toml examples/notices/red.json"
    )


@pytest.mark.e2e
def test_readme_python_api_example_runs(tmp_path: Path, kafka_bootstrap: str) -> None:
    """The README's commands, as a newcomer runs them (the test's broker instead of the one the
    first command starts, this interpreter for ``python``): `nbx node init IT FR`, then service.py
    publishes the red notice from IT to FR, receives it at FR and prints exactly the two lines the
    README promises."""
    section = readme_section()
    (tmp_path / "service.py").write_text(service_program(section))
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    _, init_line, service_line = shell_commands(section)
    impl = os.environ.get("NBX_TEST_BROKER", "noida")
    init_line = init_line.replace("--dev-broker noida", f"--dev-broker {impl}")
    init_args = [*init_line.split(), "--bootstrap", kafka_bootstrap]
    init = run([sys.executable, "-m", "broker", *init_args[1:]], tmp_path)
    assert init.returncode == 0, init.stderr
    assert init.stdout.splitlines()[:2] == [
        f"wrote {Path('net') / 'IT' / 'node.toml'}",
        f"wrote {Path('net') / 'FR' / 'node.toml'}",
    ]
    service = run([sys.executable, *service_line.split()[1:]], tmp_path)
    assert service.returncode == 0, service.stderr
    assert service.stdout.splitlines() == promised_output(section)
    assert service.stderr == ""  # no warning, no traceback
    # the daemon's store holds the notice after the program ended (the store was closed cleanly)
    assert (tmp_path / "net" / "FR" / "FR.sqlite").stat().st_size > 0
