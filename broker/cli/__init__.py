"""The ``nbx`` command: thin wrappers that parse arguments and call the modules of :mod:`broker`.

Every expected failure (:class:`broker.errors.NbxError`, a missing file, a broker that cannot be
reached) is printed as one line on stderr with a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from broker.errors import NbxError
from broker.logging import configure, quiet_client_libraries


class NbxGroup(click.Group):
    """A click group that turns NBX errors into one clear line and exit code 1."""

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


# Command registration: one line per command module, each module owns its commands.
from broker.cli import brokers as _brokers  # noqa: E402

_brokers.register(main)

from broker.cli import schema_cmds as _schema_cmds  # noqa: E402

_schema_cmds.register(main)

from broker.cli import keys_cmds as _keys_cmds  # noqa: E402

_keys_cmds.register(main)

from broker.cli import node_cmds as _node_cmds  # noqa: E402

_node_cmds.register(main)

from broker.cli import policy_cmds as _policy_cmds  # noqa: E402

_policy_cmds.register(main)

from broker.cli import bench_cmds as _bench_cmds  # noqa: E402

_bench_cmds.register(main)
