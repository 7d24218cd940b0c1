"""docs/operations.md documents every log event the code can write, every metric of
:class:`broker.vocab.Metric` and every exit code of ``nbx``, and nothing that does not exist.

The events are found in the code, not listed here: every call of a logger method (``debug``,
``info``, ``warning``, ``error``, ``critical``, ``exception``) anywhere under ``broker/`` whose
receiver is a logger (``get_logger()``, or a name ``log`` / ``_log`` / ``logger`` / ``_logger``,
however it is reached: ``self._log``, ``pipe.log``) is read with :mod:`ast`. Its first argument
is the event name: a string literal, or an f-string whose placeholders :data:`EXPANSIONS` says
how to fill. The keyword arguments are its fields. An event added anywhere in ``broker/`` makes
this test fail until docs/operations.md has a row for it with the same level and fields.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from broker.cli import EXIT_CODES
from broker.logging import ALLOWED_KEYS
from broker.vocab import DirectoryState, Metric

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "broker"
DOC = ROOT / "docs" / "operations.md"

#: the methods of a structlog logger that write a line, and the level each writes at
LEVEL_OF: dict[str, str] = {
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "exception": "error",
    "critical": "critical",
    "fatal": "critical",
}
#: the names a logger is reached through (``log``, ``self._log``, ``pipe.log``)
LOGGER_NAMES = frozenset({"log", "_log", "logger", "_logger"})
#: what the allow-list processor itself writes (broker/logging.py), at the level of the call
ANY_LEVEL = "any"
#: the shape of an event name (broker/logging.py: anything else is logged as log.invalid-event)
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$")


def _refusal_states() -> set[str]:
    """The states ``DirectoryGate.refusal`` can return (``return DirectoryState.X``), read from
    broker/node/runtime.py, which fill ``directory.{state}``."""
    tree = ast.parse((PACKAGE / "node" / "runtime.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "refusal":
            for ret in ast.walk(node):
                value = ret.value if isinstance(ret, ast.Return) else None
                if (
                    isinstance(value, ast.Attribute)
                    and isinstance(value.value, ast.Name)
                    and value.value.id == "DirectoryState"
                ):
                    found.add(DirectoryState[value.attr].value)
    assert found, "DirectoryGate.refusal returns no DirectoryState any more: update EXPANSIONS"
    return found


#: how to fill the placeholders of an event written as an f-string (the template as
#: :func:`template` prints it): the values each can take, found in the code where possible
EXPANSIONS: dict[str, Callable[[], set[str]]] = {
    "directory.{state}": _refusal_states,
}


@dataclass
class Logged:
    """What the code can log under one event name."""

    levels: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    places: list[str] = field(default_factory=list)


@dataclass
class Walk:
    """What walking the sources found: the events, and the calls that could not be read."""

    events: dict[str, Logged] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, name: str, level: str, fields: Iterable[str], place: str) -> None:
        """Record one call logging ``name``."""
        logged = self.events.setdefault(name, Logged())
        logged.levels.add(level)
        logged.fields.update(fields)
        logged.places.append(place)


def is_logger(node: ast.expr) -> bool:
    """Whether ``node`` (the receiver of a method call) is a logger."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name == "get_logger"
    if isinstance(node, ast.Attribute):
        return node.attr in LOGGER_NAMES
    return isinstance(node, ast.Name) and node.id in LOGGER_NAMES


def template(node: ast.JoinedStr) -> str:
    """An f-string event as a template: ``f"directory.{state}"`` -> ``directory.{state}``."""
    out = []
    for part in node.values:
        if isinstance(part, ast.Constant):
            out.append(str(part.value))
        else:
            assert isinstance(part, ast.FormattedValue)
            out.append("{" + ast.unparse(part.value) + "}")
    return "".join(out)


def walk_source(
    source: str,
    place: str,
    walk: Walk,
    expansions: dict[str, Callable[[], set[str]]] | None = None,
) -> None:
    """Add the events that ``source`` (a module shown as ``place``) can log to ``walk``."""
    expand = EXPANSIONS if expansions is None else expansions
    for node in ast.walk(ast.parse(source)):
        # the allow-list's own replacement: event_dict["event"] = "log.invalid-event"
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.slice, ast.Constant)
                    and target.slice.value == "event"
                    and isinstance(node.value.value, str)
                ):
                    walk.add(node.value.value, ANY_LEVEL, (), f"{place}:{node.lineno}")
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LEVEL_OF
        ):
            continue
        at = f"{place}:{node.lineno}"
        first = node.args[0] if node.args else None
        if not is_logger(node.func.value):
            # a logger reached through a new name would be missed: an event-shaped first
            # argument on any other receiver is reported, so LOGGER_NAMES gets the name
            if (
                isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and EVENT_NAME.match(first.value)
            ):
                walk.problems.append(f"{at}: {ast.unparse(node.func)} looks like a logger")
            continue
        level = LEVEL_OF[node.func.attr]
        if any(k.arg is None for k in node.keywords):
            walk.problems.append(f"{at}: pass the fields of a log call by name, not **kwargs")
        fields = [k.arg for k in node.keywords if k.arg is not None]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            walk.add(first.value, level, fields, at)
        elif isinstance(first, ast.JoinedStr):
            name = template(first)
            if name not in expand:
                walk.problems.append(f"{at}: say in EXPANSIONS how {name!r} is filled")
                continue
            placeholder = re.compile(r"\{[^}]*\}")
            for value in sorted(expand[name]()):
                walk.add(placeholder.sub(value, name), level, fields, at)
        else:
            shown = ast.unparse(first) if first is not None else "nothing"
            walk.problems.append(f"{at}: the event must be a literal or f-string, not {shown}")


def logged_events(package: Path = PACKAGE) -> Walk:
    """Every event the modules under ``package`` can log."""
    walk = Walk()
    for path in sorted(package.rglob("*.py")):
        walk_source(path.read_text(), str(path.relative_to(package.parent)), walk)
    return walk


# --- the document ------------------------------------------------------------------------------


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section of ``text`` (up to the next ``## ``)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/operations.md has no '## {title}' section"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row of ``text`` (header and ``|---|`` rows left out)."""
    rows = []
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    for n, line in enumerate(lines):
        cells = [c.strip() for c in line.strip("|").split("|")]
        following = lines[n + 1] if n + 1 < len(lines) else ""
        if set(line) <= set("|-: ") or re.fullmatch(r"\|?[\s|:-]+\|?", following):
            continue  # the separator row, or the header row above it
        rows.append(cells)
    return rows


def ticked(cell: str) -> list[str]:
    """The ``code`` spans of a cell."""
    return re.findall(r"`([^`]+)`", cell)


@dataclass(frozen=True)
class Documented:
    """One row of the log events table."""

    levels: frozenset[str]
    fields: frozenset[str]
    meaning: str
    action: str


def documented_events(text: str) -> dict[str, Documented]:
    """The rows of the log event tables: event, level(s), fields, meaning, what to do."""
    out: dict[str, Documented] = {}
    for cells in table_rows(section(text, "Log events")):
        assert len(cells) == 5, f"an event row has 5 cells: {cells}"
        names = ticked(cells[0])
        assert len(names) == 1, f"one event per row: {cells[0]}"
        assert names[0] not in out, f"{names[0]} is documented twice"
        levels = frozenset(w.strip() for w in cells[1].split(",") if w.strip())
        fields = frozenset(ticked(cells[2]))
        out[names[0]] = Documented(levels, fields, cells[3], cells[4])
    return out


@pytest.fixture(scope="module")
def doc() -> str:
    """The text of docs/operations.md."""
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def walk() -> Walk:
    """The events ``broker/`` can log."""
    return logged_events()


def _row(name: str, logged: Logged) -> str:
    levels = ", ".join(sorted(logged.levels))
    fields = ", ".join(f"`{f}`" for f in sorted(logged.fields)) or "none"
    return f"| `{name}` | {levels} | {fields} | ... | ... |  ({', '.join(logged.places)})"


def test_every_log_call_is_readable(walk: Walk) -> None:
    """Each log call names its event as a literal (or an f-string :data:`EXPANSIONS` fills) and
    its fields by name, so the walk below sees everything the code can log."""
    assert not walk.problems, "\n".join(walk.problems)
    assert len(walk.events) > 30  # the walk finds the events (36 when this test was written)


def test_every_logged_event_is_documented(walk: Walk, doc: str) -> None:
    """Each event the code can log has a row in docs/operations.md (the failure prints the rows
    to add, with the level and fields the code uses)."""
    documented = documented_events(doc)
    missing = {n: e for n, e in walk.events.items() if n not in documented}
    assert not missing, "add to docs/operations.md:\n" + "\n".join(
        _row(n, e) for n, e in sorted(missing.items())
    )


def test_every_documented_event_is_logged(walk: Walk, doc: str) -> None:
    """docs/operations.md documents no event the code cannot log (a renamed or removed one)."""
    stale = sorted(set(documented_events(doc)) - set(walk.events))
    assert not stale, f"documented but never logged: {stale}"


def test_documented_levels_and_fields_match_the_code(walk: Walk, doc: str) -> None:
    """Each documented event names the level(s) it is logged at and exactly the fields its
    calls pass; each row says what the event means and what the operator should do."""
    wrong = []
    for name, row in documented_events(doc).items():
        logged = walk.events.get(name)
        if logged is None:
            continue  # test_every_documented_event_is_logged
        if row.levels != logged.levels:
            wrong.append(f"{name}: levels {sorted(row.levels)}, code {sorted(logged.levels)}")
        if row.fields != logged.fields:
            wrong.append(f"{name}: fields {sorted(row.fields)}, code {sorted(logged.fields)}")
        if len(row.meaning) < 10 or len(row.action) < 2:
            wrong.append(f"{name}: say what it means and what to do")
    assert not wrong, "\n".join(wrong)


def test_every_logged_field_passes_the_allow_list(walk: Walk) -> None:
    """A field the allow-list does not know is dropped from the line without a word: each
    field a log call passes is on broker.logging.ALLOWED_KEYS (or the call is wrong)."""
    dropped = {
        f"{name}: {sorted(e.fields - ALLOWED_KEYS)} ({', '.join(e.places)})"
        for name, e in walk.events.items()
        if e.fields - ALLOWED_KEYS
    }
    assert not dropped, "\n".join(sorted(dropped))


def test_every_event_name_has_the_allowed_shape(walk: Walk) -> None:
    """An event name that is not dotted lower case would be logged as log.invalid-event."""
    bad = sorted(n for n in walk.events if not EVENT_NAME.match(n))
    assert not bad, bad


def test_every_metric_is_documented_and_nothing_else(doc: str) -> None:
    """The metrics table lists exactly the names of broker.vocab.Metric, each with its type."""
    rows = table_rows(section(doc, "Metrics"))
    names = [ticked(r[0])[0] for r in rows if ticked(r[0])]
    assert sorted(names) == sorted(m.value for m in Metric)
    assert len(names) == len(set(names))
    types = {ticked(r[0])[0]: r[1] for r in rows}
    assert all(t in {"counter", "gauge", "histogram", "info"} for t in types.values()), types
    counters = {n for n, t in types.items() if t == "counter"}
    assert counters == {m.value for m in Metric if m.value.endswith("_total")}


def test_every_exit_code_is_documented_and_nothing_else(doc: str) -> None:
    """The exit codes table lists exactly the codes of broker.cli.EXIT_CODES."""
    rows = table_rows(section(doc, "Exit codes"))
    assert sorted(int(ticked(r[0])[0]) for r in rows) == sorted(EXIT_CODES)


#: the incidents the runbooks cover (issue 22)
RUNBOOKS = (
    "Broker unreachable",
    "Store full or not writable",
    "Key expiring",
    "Quarantine spike",
    "Directory rollback refused",
    "Directory stale",
)


def test_runbooks_cover_the_common_incidents(doc: str) -> None:
    """Each common incident has a runbook (a ``### `` heading under ``## Runbooks``)."""
    headings = re.findall(r"^### (.+)$", section(doc, "Runbooks"), re.M)
    assert [h for h in RUNBOOKS if h not in headings] == []


def test_the_document_names_only_existing_events_and_metrics(walk: Walk, doc: str) -> None:
    """Every event or metric named anywhere in the document (runbooks too) exists."""
    families = {n.split(".")[0] for n in walk.events}
    files = re.compile(r"\.(json|toml|md|ya?ml|py|db|sqlite|pem|key|pub)$")
    names = set(ticked(doc))
    events = {
        n
        for n in names
        if EVENT_NAME.match(n) and n.split(".")[0] in families and not files.search(n)
    }
    metrics = {n.split("{")[0] for n in names if n.startswith("nbx_")}
    assert sorted(events - set(walk.events)) == []
    known = {m.value for m in Metric}
    # a histogram's series: _bucket, _sum, _count
    series = {f"{m}{s}" for m in known for s in ("_bucket", "_sum", "_count")}
    assert sorted(metrics - known - series) == []


# --- the walk itself --------------------------------------------------------------------------

SAMPLE = """
log = get_logger()
log.info("a.started", bureau=b, count=1)
self._log.warning("a.retry", error_type=t)
get_logger().error(f"a.{state}", reason=state)
printer.error("nbx: error: not an event")
console.info("a.hidden")
log.debug(event_name)
pipe.log.info("a.started", **fields)
"""


def test_the_walk_reads_literals_fstrings_and_reports_what_it_cannot_read() -> None:
    """The walk finds each logger call with its level and fields, fills an f-string from
    its expansion, skips a printer's line, and reports a logger-like call on an unknown
    receiver, an event held in a variable and fields passed as ``**``."""
    walk = Walk()
    walk_source(SAMPLE, "x.py", walk, {"a.{state}": lambda: {"stale", "too-old"}})
    assert {n: (e.levels, e.fields) for n, e in walk.events.items()} == {
        "a.started": ({"info"}, {"bureau", "count"}),
        "a.retry": ({"warning"}, {"error_type"}),
        "a.stale": ({"error"}, {"reason"}),
        "a.too-old": ({"error"}, {"reason"}),
    }
    assert walk.problems == [
        "x.py:7: console.info looks like a logger",
        "x.py:8: the event must be a literal or f-string, not event_name",
        "x.py:9: pass the fields of a log call by name, not **kwargs",
    ]
    other = Walk()
    walk_source('log.error(f"b.{x}")', "y.py", other, {})
    assert other.problems == ["y.py:1: say in EXPANSIONS how 'b.{x}' is filled"]


def test_the_walk_finds_the_events_of_the_code() -> None:
    """Known calls are found with their levels and fields (a check on the walk, not on the
    document): the f-string gate events, the allow-list's own replacement, the pipeline's."""
    events = logged_events().events
    assert events["directory.stale"].levels == {"error"}
    assert events["directory.too-old"].fields == {"serial", "topic", "reason", "elapsed_ms"}
    assert "directory.rollback" not in events  # refusal() never returns it
    assert events["log.invalid-event"].levels == {ANY_LEVEL}
    assert events["package.delivered"].places[0].startswith("broker/node/pipeline.py:")
    assert events["transport.retry"].fields >= {"bureau", "attempt", "retry_in_s"}
