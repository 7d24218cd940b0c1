"""The ``nbx`` command: thin wrappers that parse arguments and call the modules of :mod:`broker`.

Every expected failure (:class:`broker.errors.NbxError`, a missing file, a broker that cannot be
reached) is printed as one line on stderr with a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from broker.errors import NbxError
from broker.logging import configure, quiet_client_libraries

#: every command of ``nbx`` and the module of :mod:`broker.cli` that registers it; a module is
#: imported only when one of its commands runs (or ``nbx --help`` lists them all), so a command
#: does not pay for the imports of the others (tests/foundation/test_cli.py checks the table)
COMMAND_MODULES: dict[str, str] = {
    "audit": "audit_cmds",
    "bench": "bench_cmds",
    "cancel": "node_cmds",
    "consume": "node_cmds",
    "demo": "brokers",
    "dev-broker": "brokers",
    "directory": "keys_cmds",
    "erasure": "erasure_cmds",
    "import": "schema_cmds",
    "inbox": "node_cmds",
    "keys": "keys_cmds",
    "node": "node_cmds",
    "ping": "brokers",
    "policy": "policy_cmds",
    "oversight": "review_cmds",
    "publish": "node_cmds",
    "quarantine": "quarantine_cmds",
    "report": "report_cmds",
    "respond": "respond_cmds",
    "review": "review_cmds",
    "schema": "schema_cmds",
    "screening": "screening_cmds",
    "status": "node_cmds",
    "subject": "subject_cmds",
    "suspend": "node_cmds",
    "validate": "schema_cmds",
}


def load_commands(module: str) -> dict[str, click.Command]:
    """The commands ``broker.cli.<module>`` registers."""
    scratch = click.Group()
    importlib.import_module(f"broker.cli.{module}").register(scratch)
    return dict(scratch.commands)


class NbxGroup(click.Group):
    """A click group that loads each command's module on first use and turns NBX errors into
    one clear line and exit code 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, loaded or not."""
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module the first time."""
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            for name, command in load_commands(module).items():
                self.commands.setdefault(name, command)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:  # click returns whatever the command returns
        """Run the command, printing ``nbx: error: ...`` instead of a traceback for known errors."""
        try:
            return super().invoke(ctx)
        except NbxError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            click.echo(f"nbx: error: {first}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:
            click.echo(
                f"nbx: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True
            )
            sys.exit(1)


@click.group(cls=NbxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nbx", prog_name="nbx")
def main() -> None:
    """NBX: signed, end-to-end encrypted notice exchange between national bureaus over Kafka.

    One-shot commands log warnings as JSON lines on stderr (NBX_LOG_LEVEL changes the level);
    `nbx consume` logs every event as JSON lines on stdout.
    """
    quiet_client_libraries()
    configure(level=os.environ.get("NBX_LOG_LEVEL", "WARNING"), stream="stderr")
