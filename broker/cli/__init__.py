"""The ``nbx`` command: thin wrappers that parse arguments and call the modules of :mod:`broker`.

Every expected failure goes through one path, :meth:`NbxGroup.invoke`, and is printed as one
line ``nbx: error: WHERE: problem`` on stderr, never as a traceback. WHERE is the file (or
record) the problem is in when there is one, else the option or the command. Exit codes
(:data:`EXIT_CODES`): 1 an error (:class:`broker.errors.NbxError`, a file that cannot be read,
a broker that cannot be reached), 2 bad arguments (a missing or malformed option, a file or
folder argument that does not exist), 3 the store cannot be written, 4 (``consume``) another
running daemon holds this replica id.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from broker.errors import NbxError, SchemaError
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
    "deploy": "deploy_cmds",
    "dev-broker": "brokers",
    "dev-postgres": "brokers",
    "directory": "keys_cmds",
    "erasure": "erasure_cmds",
    "import": "schema_cmds",
    "inbox": "node_cmds",
    "keys": "keys_cmds",
    "network": "network_cmds",
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
    "store": "store_cmds",
    "subject": "subject_cmds",
    "suspend": "node_cmds",
    "validate": "schema_cmds",
}


#: the exit codes of ``nbx`` (README.md, "Exit codes"; tests/cli/test_errors.py checks them)
EXIT_CODES: dict[int, str] = {
    0: "ok",
    1: "an error (one line `nbx: error: ...` on stderr)",
    2: "bad arguments, or `publish` reached only some recipients (listed)",
    3: "the store cannot be written",
    4: "`consume`: another running daemon holds this replica id",
}

#: how click words a path parameter that failed its check: ``Directory 'x' does not exist.``
_PATH_PROBLEM = re.compile(
    r"^(File|Directory|Path) (['\"])(?P<path>.*)\2 (?P<problem>.*?)\.?$", re.S
)


def error_line(where: str | None, problem: str) -> str:
    """The one line every ``nbx`` error is printed as: ``nbx: error: WHERE: problem`` (no WHERE
    when the problem is in no file, option or command)."""
    problem = problem.strip().splitlines()[0] if problem.strip() else "failed"
    return f"nbx: error: {where}: {problem}" if where else f"nbx: error: {problem}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() or len(text) == 1 else text


def _command_words(ctx: click.Context | None) -> str:
    """``inbox list`` for the context of ``nbx inbox list`` (the root's name left out)."""
    words: list[str] = []
    while ctx is not None and ctx.parent is not None:
        words.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(w for w in words if w)


def usage_error_line(exc: click.UsageError) -> str:
    """A click usage error as one ``nbx: error:`` line: a path that failed its check names the
    path first (``nbx: error: x.json: file does not exist (NOTICE_FILE)``); any other names the
    option, or the command, and how to get help."""
    command = _command_words(exc.ctx)
    help_hint = f" (see 'nbx {command} --help')".replace("nbx  ", "nbx ") if exc.ctx else ""
    if isinstance(exc, click.BadOptionUsage):  # ``Option '--config' requires an argument.``
        prefix = f"Option '{exc.option_name}' "
        problem = exc.message.removeprefix(prefix).rstrip(".")
        return error_line(exc.option_name, _lower_first(problem) + help_hint)
    if isinstance(exc, click.BadParameter):
        param = exc.param
        hint = exc.param_hint
        if hint is None and param is not None:
            hint = param.get_error_hint(exc.ctx) if exc.ctx is not None else param.name
        where = hint if isinstance(hint, str) else " / ".join(hint or [])
        where = where.replace("'", "").replace('"', "") or command
        if isinstance(exc, click.MissingParameter):
            return error_line(where, f"required{help_hint}")
        found = _PATH_PROBLEM.match(exc.message)
        if found is not None and param is not None and isinstance(param.type, click.Path):
            problem = f"{found[1].lower()} {found['problem']}"
            return error_line(found["path"], f"{problem} ({where})")
        return error_line(where, _lower_first(exc.message.rstrip(".")) + help_hint)
    return error_line(command or None, _lower_first(exc.format_message().rstrip(".")) + help_hint)


def os_error_line(exc: OSError) -> str:
    """An operating-system error as one line naming the file first: ``nbx: error: x.json: no
    such file or directory``."""
    problem = _lower_first(exc.strerror) if exc.strerror else str(exc)
    where = os.fsdecode(exc.filename) if exc.filename is not None else None
    return error_line(where, problem)


def fail(line: str, exit_code: int) -> NoReturn:
    """Print ``line`` (an :func:`error_line`) on stderr and exit with ``exit_code``."""
    click.echo(line, err=True)
    sys.exit(exit_code)


def names_file(param: str) -> Callable[[click.Command], click.Command]:
    """Decorate a command (above its ``@...command``) whose :class:`SchemaError` is about the
    file given as ``param``: the error's line then names that file first (``nbx: error:
    x.json: invalid JSON: ...``) unless it already does."""

    def decorate(command: click.Command) -> click.Command:
        inner = command.callback
        if inner is None:  # pragma: no cover - every nbx command has a callback
            return command

        @functools.wraps(inner)
        def callback(*args: Any, **kwargs: Any) -> Any:
            try:
                return inner(*args, **kwargs)
            except SchemaError as exc:
                where = os.fsdecode(kwargs[param])
                if str(exc).startswith(f"{where}: "):
                    raise
                raise SchemaError(f"{where}: {exc}") from None

        command.callback = callback
        return command

    return decorate


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

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Parse the top-level options; a usage error is one ``nbx: error:`` line, exit 2."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            fail(usage_error_line(exc), exc.exit_code)

    def invoke(self, ctx: click.Context) -> Any:  # click returns whatever the command returns
        """Run the command: the one error path, printing ``nbx: error: WHERE: problem`` instead
        of a traceback or click's usage block, with the exit code of :data:`EXIT_CODES`."""
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise  # a group given no command prints its help
        except click.UsageError as exc:
            fail(usage_error_line(exc), exc.exit_code)
        except click.ClickException as exc:
            fail(error_line(None, exc.format_message()), exc.exit_code)
        except NbxError as exc:
            fail(error_line(None, str(exc) or type(exc).__name__), exc.exit_code)
        except OSError as exc:
            fail(os_error_line(exc), 1)


@click.group(cls=NbxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nbx", prog_name="nbx")
def main() -> None:
    """NBX: signed, end-to-end encrypted notice exchange between national bureaus over Kafka.

    One-shot commands log warnings as JSON lines on stderr (NBX_LOG_LEVEL changes the level);
    `nbx consume` logs every event as JSON lines on stdout.
    """
    quiet_client_libraries()
    configure(level=os.environ.get("NBX_LOG_LEVEL", "WARNING"), stream="stderr")
