"""Every `nbx` error goes through one path: one line `nbx: error: WHERE: problem` on stderr
(WHERE the file, else the option or command), the exit code of `broker.cli.EXIT_CODES`, never a
traceback or click's usage block. The tests walk the whole command tree, so a new command is
checked without being listed here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from broker.cli import EXIT_CODES, main
from broker.examples import notices_dir, policies_dir

#: path parameters a command writes (a folder or file to create), not reads
OUTPUTS = {"folder", "out_dir", "out", "html_path", "profile"}
#: commands that check their other options before reading a file: what makes them read it
EXTRA: dict[tuple[str, ...], list[str]] = {
    ("directory", "rules"): ["--review-types", "red"],
    ("network", "init"): ["--bureaus", "IT,FR"],  # a network needs two bureaus
}


def _leaves(command: click.Command, words: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from _leaves(sub, (*words, name))
    else:
        yield words


LEAVES = list(_leaves(main))


def _command(words: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for word in words:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), word)
        assert found is not None
        command = found
    return command


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _one_line(result: Result) -> str:
    """The single stderr line of a failed command (and nothing on stdout)."""
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_the_walk_finds_every_command() -> None:
    """The tree walk reaches the commands of every module (nested groups included)."""
    names = {" ".join(w) for w in LEAVES}
    assert {"validate", "inbox show", "policy explain", "screening protect add"} <= names
    assert len(LEAVES) >= 55


@pytest.mark.parametrize("words", LEAVES, ids=" ".join)
def test_every_command_refuses_an_unknown_option_in_one_line(words: tuple[str, ...]) -> None:
    """An option the command does not have: one line naming the command and its help, exit 2."""
    result = _run(*words, "--no-such-option")
    assert result.exit_code == 2
    command = " ".join(words)
    assert _one_line(result) == (
        f"nbx: error: {command}: no such option '--no-such-option' (see 'nbx {command} --help')"
    )


def _well_formed(kind: click.ParamType[Any]) -> str:
    """A value ``kind`` accepts: its first choice, a number, a date, else a bureau code."""
    choices = getattr(kind, "choices", None)
    if choices:
        return str(next(iter(choices)))
    if isinstance(kind, click.types._NumberParamTypeBase):
        return "1"
    if isinstance(kind, click.DateTime):
        return "2025-01-01"
    return "FR"


def _fill(command: click.Command, missing: Path) -> tuple[list[str], dict[str, click.Path]]:
    """Arguments for ``command``: every input path parameter pointing at a missing file under
    ``missing``, every other required parameter a well-formed value."""
    args: list[str] = []
    inputs: dict[str, click.Path] = {}
    for param in command.params:
        value: str | None = None
        if isinstance(param.type, click.Path) and param.name not in OUTPUTS:
            value = str(missing / f"no-{param.name}")
            inputs[value] = param.type
        elif param.required:
            value = _well_formed(param.type)
        if value is None:
            continue
        if isinstance(param, click.Option):
            args += [param.opts[0], value]
        else:
            args.append(value)
    return args, inputs


WITH_INPUT = [w for w in LEAVES if _fill(_command(w), Path("x"))[1]]


@pytest.mark.parametrize("words", WITH_INPUT, ids=" ".join)
def test_every_command_names_a_missing_input_file_first(
    words: tuple[str, ...], tmp_path: Path
) -> None:
    """A file or folder to read that does not exist: one line starting with its path; exit 2
    when the argument parser checks it (a folder that must exist), else 1."""
    args, inputs = _fill(_command(words), tmp_path)
    result = _run(*words, *args, *EXTRA.get(words, []))
    if result.exit_code == 0:  # a path the command creates (an output folder) is not an input
        assert any(Path(p).exists() for p in inputs), result.stdout
        return
    line = _one_line(result)
    named = [p for p in inputs if line.startswith(f"nbx: error: {p}: ")]
    assert named, line
    expected = 2 if inputs[named[0]].exists else 1
    assert result.exit_code == expected, line
    assert result.stdout == ""


@pytest.fixture
def bad_json(tmp_path: Path) -> Path:
    """A notice file that is not JSON (a missing comma on line 2)."""
    path = tmp_path / "notice.json"
    path.write_text('{"notice_type": "red"\n "version": 1}\n')
    return path


BAD_JSON_LINE = "invalid JSON: Expecting ',' delimiter: line 2 column 2 (char 23)"


def test_validate_names_the_file_and_no_dollar(bad_json: Path) -> None:
    """`nbx validate` of a file that is not JSON: the file named, the problem in words."""
    result = _run("validate", str(bad_json))
    assert result.exit_code == 1
    assert _one_line(result) == f"nbx: error: {bad_json}: {BAD_JSON_LINE}"


def test_validate_lists_each_problem_with_file_and_field(tmp_path: Path) -> None:
    """Each problem of an invalid notice is its own `nbx: error: FILE: FIELD: problem` line."""
    data = json.loads((notices_dir() / "red.json").read_text())
    data["handling"]["code"] = "H9"
    data["language"] = "xx"
    path = tmp_path / "red.json"
    path.write_text(json.dumps(data))
    result = _run("validate", str(path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"nbx: error: {path}: language: unknown ISO 639-1 language code 'xx'",
        f"nbx: error: {path}: handling.code: Input should be 'H0', 'H1', 'H2' or 'H3'",
    ]


@pytest.mark.parametrize(
    ("words", "prefix"),
    [
        (("import", "interpol"), ""),
        (
            ("policy", "explain", "--policies", str(policies_dir()), "--to", "FR"),
            "invalid notice: ",
        ),
    ],
    ids=lambda v: " ".join(v[:2]) if isinstance(v, tuple) else v,
)
def test_a_json_file_that_is_not_json_is_named(
    words: tuple[str, ...], prefix: str, bad_json: Path
) -> None:
    """Every command reading a notice (or INTERPOL) JSON file names it when it is not JSON."""
    result = _run(*words, str(bad_json))
    assert result.exit_code == 1
    assert _one_line(result) == f"nbx: error: {bad_json}: {prefix}{BAD_JSON_LINE}"


def test_a_config_that_is_not_toml_is_named(tmp_path: Path) -> None:
    """A node file that is not TOML: the file named first, exit 1."""
    config = tmp_path / "node.toml"
    config.write_text("bureau = \n")
    result = _run("inbox", "list", "--config", str(config))
    assert result.exit_code == 1
    assert _one_line(result) == (
        f"nbx: error: {config}: not valid TOML: Invalid value (at line 1, column 10)"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["policy", "explain", "--policies", "nope", "--to", "FR", "x.json"],
            "nbx: error: nope: directory does not exist (--policies)",
        ),
        (
            ["inbox", "show", "--config", "node.toml", "IT-2025-0001"],
            "nbx: error: --purpose: required (see 'nbx inbox show --help')",
        ),
        (["inbox", "list", "--config"], "nbx: error: --config: requires an argument"),
        (
            ["consume", "--config", "node.toml", "--until-idle", "soon"],
            "nbx: error: --until-idle: 'soon' is not a valid float range "
            "(see 'nbx consume --help')",
        ),
        (
            ["policy", "explain", "--policies", ".", "--to", "FRA", "x.json"],
            "nbx: error: --to: 'FRA' is not a two-letter bureau code "
            "(see 'nbx policy explain --help')",
        ),
        (["frobnicate"], "nbx: error: no such command 'frobnicate' (see 'nbx --help')"),
        (["--frob"], "nbx: error: no such option '--frob' (see 'nbx --help')"),
    ],
    ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else "",
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], line: str) -> None:
    """Bad arguments (missing, malformed, unknown) are one line naming the option, exit 2."""
    result = _run(*args)
    assert result.exit_code == 2
    assert _one_line(result) == line


def test_a_group_without_a_command_prints_its_help() -> None:
    """`nbx inbox` alone is not an error line but the group's help (exit 2, as click does)."""
    result = _run("inbox")
    assert result.exit_code == 2
    assert "Commands:" in result.stderr + result.stdout


def test_the_exit_codes_are_documented() -> None:
    """The README's exit-code line lists the codes of `EXIT_CODES`."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    line = readme[readme.index("Exit codes:") :].split("\n\n")[0].replace("\n", " ")
    for code in EXIT_CODES:
        assert f" {code} " in line


def test_node_commands_name_a_notice_or_directory_file_that_is_not_json(
    tmp_path: Path, bad_json: Path
) -> None:
    """`publish`, `screening check`, `directory show|verify` of a file that is not JSON: one
    line naming the file, exit 1 (no broker needed: the file is read first)."""
    from broker.node.provision import provision

    config = str(provision(tmp_path / "net", ["IT"], bootstrap="127.0.0.1:1")["IT"])
    anchor = str(tmp_path / "net" / "anchor" / "trust-anchor.pub")
    cases = {
        ("publish", "--config", config): "invalid notice (1 problem(s); `nbx validate` lists "
        f"them all): {BAD_JSON_LINE}",
        ("screening", "check", "--config", config): "not JSON: "
        + BAD_JSON_LINE.removeprefix("invalid JSON: "),
        ("directory", "show", "--anchor", anchor): "not a signed NBX directory",
        ("directory", "verify", "--anchor", anchor): "not a signed NBX directory",
    }
    for words, problem in cases.items():
        result = _run(*words, str(bad_json))
        assert result.exit_code == 1, result.stderr
        assert _one_line(result) == f"nbx: error: {bad_json}: {problem}"
