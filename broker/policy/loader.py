"""Loading and checking policy files: every problem names the file, the line where it can be found,
and the rule or key it is about.

``load_policies`` raises :class:`PolicyInvalid` (a :class:`~broker.errors.PolicyError`) listing
every problem of every file; ``check_policies`` returns the same problems without raising, for
``nbx policy check``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ValidationError

from broker.errors import PolicyError
from broker.ids import is_bureau_id
from broker.policy.patterns import compile_pattern
from broker.policy.policy import SPECIAL_CATEGORIES, Policy, PolicySet
from broker.policy.rules import (
    DECLINE_MATCHERS,
    DEFAULT_COUNTRY,
    SCHEMA,
    SPECIAL_WILDCARD,
    DeclineRule,
    Inbound,
    PolicyFile,
    Retention,
    ReviewRule,
    Rule,
)
from broker.schemas import NoticeType, field_categories

_HEADER = re.compile(r"^\s*\[")
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


@dataclass(frozen=True)
class Problem:
    """One problem in one policy file."""

    file: str
    line: int | None
    where: str | None
    message: str

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{place}: {self.where}: {self.message}" if self.where else f"{place}: {self.message}"
        )


class PolicyInvalid(PolicyError):  # noqa: N818 - named like the outcome, as NoticeInvalid
    """One or more policy files are invalid; ``problems`` lists each, the message one per line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def load_policies(directory: Path) -> PolicySet:
    """Load and check every ``*.toml`` file of ``directory`` (``CC.toml`` and ``default.toml``).

    Raises :class:`PolicyInvalid` listing every problem, or :class:`PolicyError` if the directory
    holds no policy file.
    """
    policies, problems = _load(directory)
    if problems:
        raise PolicyInvalid(problems)
    return PolicySet(policies)


def check_policies(directory: Path) -> tuple[PolicySet, list[Problem]]:
    """Load what can be loaded; return it with the problems found (empty when all is well)."""
    policies, problems = _load(directory)
    return PolicySet(policies), problems


def parse_policy(content: bytes, *, source: str) -> Policy:
    """Check and compile one policy file's bytes; ``source`` is its file name (``FR.toml``).

    Raises :class:`PolicyInvalid` listing every problem.
    """
    policy, problems = _parse(content, source)
    if problems or policy is None:
        raise PolicyInvalid(problems)
    return policy


def _load(directory: Path) -> tuple[list[Policy], list[Problem]]:
    if not directory.is_dir():
        msg = f"{directory}: not a directory of policy files"
        raise PolicyError(msg)
    files = sorted(directory.glob("*.toml"))
    if not files:
        msg = f"{directory}: no policy files (*.toml)"
        raise PolicyError(msg)
    policies: list[Policy] = []
    problems: list[Problem] = []
    for file in files:
        policy, found = _parse(file.read_bytes(), str(file))
        problems.extend(found)
        if policy is not None:
            policies.append(policy)
    return policies, problems


def _parse(content: bytes, source: str) -> tuple[Policy | None, list[Problem]]:
    stem = Path(source).stem
    try:
        text = content.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        return None, [Problem(source, None, None, "not UTF-8 text")]
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION.search(str(exc))
        message = _TOML_POSITION.sub("", str(exc)).strip()
        line = int(found.group(1)) if found else None
        return None, [Problem(source, line, None, f"not valid TOML: {message}")]
    problems: list[Problem] = []
    if stem != DEFAULT_COUNTRY and not is_bureau_id(stem):
        problems.append(
            Problem(source, None, None, "file name must be CC.toml (a bureau code) or default.toml")
        )
    try:
        parsed = PolicyFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(_validation_problems(exc, data, text, source))
        problems.extend(_raw_duplicate_ids(data, text, source))
        return None, _sorted(problems)
    if parsed.country != stem:
        problems.append(
            Problem(
                source,
                _key_line(text, "country"),
                "country",
                f"{parsed.country!r} does not match the file name (expected {stem!r})",
            )
        )
    problems.extend(_consistency(parsed, text, source))
    if problems:
        return None, _sorted(problems)
    return Policy.compile(parsed, content, source), []


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line or 0)


def _raw_duplicate_ids(data: dict[str, object], text: str, source: str) -> list[Problem]:
    """Duplicate rule ids, found in the raw tables (when the file did not validate as a whole)."""
    inbound = data.get("inbound")
    tables = [
        ("rule", data.get("rule")),
        ("inbound.decline", inbound.get("decline") if isinstance(inbound, dict) else None),
        (
            "inbound.require_review",
            inbound.get("require_review") if isinstance(inbound, dict) else None,
        ),
    ]
    seen: dict[str, str] = {}
    problems = []
    for table, entries in tables:
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            rule_id = entry.get("id") if isinstance(entry, dict) else None
            if not isinstance(rule_id, str):
                continue
            if rule_id in seen:
                line = _table_line(text, table, index)
                message = f"duplicate rule id (also used by {seen[rule_id]})"
                problems.append(Problem(source, line, f"rule {rule_id!r}", message))
            else:
                seen[rule_id] = f"[[{table}]] #{index + 1}"
    return problems


def _consistency(parsed: PolicyFile, text: str, source: str) -> list[Problem]:
    """Cross-rule checks: unique ids, no two rules with equal matchers, no rule matching nothing."""
    problems: list[Problem] = []
    seen_ids: dict[str, str] = {}
    seen_matchers: dict[object, str] = {}
    tables: list[tuple[str, int, Rule | ReviewRule]] = [
        *[("rule", i, r) for i, r in enumerate(parsed.rule)],
        *[("inbound.decline", i, d) for i, d in enumerate(parsed.inbound.decline)],
        *[("inbound.require_review", i, d) for i, d in enumerate(parsed.inbound.require_review)],
    ]
    for table, index, rule in tables:
        line = _table_line(text, table, index)
        where = f"rule {rule.id!r}"
        if rule.id in seen_ids:
            problems.append(
                Problem(
                    source, line, where, f"duplicate rule id (also used by {seen_ids[rule.id]})"
                )
            )
        else:
            seen_ids[rule.id] = f"[[{table}]] #{index + 1}"
        if isinstance(rule, Rule):
            key = rule.matcher_key()
            if key in seen_matchers:
                other = seen_matchers[key]
                problems.append(
                    Problem(
                        source,
                        line,
                        where,
                        f"conflicts with rule {other!r}: both have exactly the same matchers "
                        "(merge them or make one more specific)",
                    )
                )
            else:
                seen_matchers[key] = rule.id
            problems.extend(_dead_rule(rule, text, source, index))
        elif isinstance(rule, DeclineRule):
            if all(getattr(rule, k) is None for k in DECLINE_MATCHERS):
                needs = " or ".join(f"'{k}'" for k in DECLINE_MATCHERS)
                problems.append(Problem(source, line, where, f"a decline rule needs {needs}"))
        elif rule.notice_type is None and rule.sender is None:
            message = "a review rule needs 'notice_type' or 'sender'"
            problems.append(Problem(source, line, where, message))
    return problems


@cache
def _known_units(notice_type: str) -> tuple[tuple[str, str], ...]:
    return tuple((p, c.value) for p, c in field_categories(notice_type).items())


def _dead_rule(rule: Rule, text: str, source: str, index: int) -> list[Problem]:
    """A rule whose path/category matchers match no field of its notice types is a mistake."""
    if rule.path is None and rule.category is None:
        return []
    types = (
        [str(t) for t in rule.notice_type] if rule.notice_type else [t.value for t in NoticeType]
    )
    units = {u for t in types for u in _known_units(t)}
    where = f"rule {rule.id!r}"
    problems = []
    scope = "" if rule.notice_type is None else f" of {', '.join(types)} notices"
    for pattern in rule.path or []:
        compiled = compile_pattern(pattern)
        if not any(compiled.matches(path) for path, _ in units):
            line = _key_line(text, "path", _table_line(text, "rule", index))
            problems.append(
                Problem(source, line, where, f"path: {pattern!r} matches no field{scope}")
            )
    if problems:
        return problems
    categories = set(rule.category or []) - {SPECIAL_WILDCARD}
    if rule.category and SPECIAL_WILDCARD in rule.category:
        categories |= SPECIAL_CATEGORIES
    patterns = [compile_pattern(p) for p in rule.path or []]
    if not any(
        (not categories or category in categories)
        and (not patterns or any(p.matches(path) for p in patterns))
        for path, category in units
    ):
        line = _table_line(text, "rule", index)
        problems.append(
            Problem(source, line, where, f"no field{scope} matches both 'path' and 'category'")
        )
    return problems


# -- turning pydantic errors into problems with a line --------------------------------------------

_MODELS: dict[str, type[BaseModel]] = {
    "": PolicyFile,
    "rule": Rule,
    "inbound": Inbound,
    "inbound.decline": DeclineRule,
    "inbound.require_review": ReviewRule,
    "retention": Retention,
}


def _validation_problems(
    exc: ValidationError, data: dict[str, object], text: str, source: str
) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if isinstance(p, str | int)]
        table, index, rest = _split_loc(loc)
        where = _describe(table, index, data)
        key = ".".join(p for p in rest if isinstance(p, str) and p != "[key]")
        line = None
        if table == "retention":
            line = _retention_line(text, [str(p) for p in rest])
        elif table:
            start = _table_line(text, table, index) if index is not None else None
            line = _key_line(text, str(rest[0]), start) if rest else start
            line = line or start
        elif rest:
            line = _key_line(text, str(rest[0]))
        message = _message(err["type"], str(err["msg"]), key, table)
        if err["type"] in ("enum", "literal_error") and key != "schema":
            message += f" (got {err['input']!r})"
        problems.append(Problem(source, line, where, message))
    return problems


def _split_loc(loc: list[str | int]) -> tuple[str, int | None, list[str | int]]:
    """``('rule', 2, 'path', 0)`` -> ``('rule', 2, ['path', 0])``."""
    if len(loc) >= 2 and loc[0] == "rule" and isinstance(loc[1], int):
        return "rule", loc[1], loc[2:]
    if len(loc) >= 3 and loc[:2] == ["inbound", "decline"] and isinstance(loc[2], int):
        return "inbound.decline", loc[2], loc[3:]
    if len(loc) >= 3 and loc[:2] == ["inbound", "require_review"] and isinstance(loc[2], int):
        return "inbound.require_review", loc[2], loc[3:]
    if len(loc) >= 2 and loc[0] == "inbound":
        return "inbound", None, loc[1:]
    if len(loc) >= 2 and loc[0] == "retention":
        return "retention", None, loc[1:]
    return "", None, loc


def _describe(table: str, index: int | None, data: dict[str, object]) -> str | None:
    if index is None:
        return f"[{table}]" if table else None
    items: object = data
    for part in table.split("."):
        items = items.get(part) if isinstance(items, dict) else None
    entry = items[index] if isinstance(items, list) and index < len(items) else None
    rule_id = entry.get("id") if isinstance(entry, dict) else None
    if isinstance(rule_id, str) and rule_id:
        return f"rule {rule_id!r}"
    return f"[[{table}]] #{index + 1}"


def _message(kind: str, msg: str, key: str, table: str) -> str:
    if kind == "extra_forbidden":
        allowed = ", ".join(f.alias or name for name, f in _MODELS[table].model_fields.items())
        return f"unknown key {key!r} (allowed: {allowed})"
    if kind == "missing":
        return f"missing key {key!r}"
    if kind == "literal_error" and key == "schema":
        return f"schema must be {SCHEMA!r}"
    msg = msg.removeprefix("Value error, ")
    return f"{key}: {msg}" if key else msg


def _retention_line(text: str, rest: list[str]) -> int | None:
    """The line of a ``[retention]`` key (``max_days``) or ``[retention.by_type]`` entry."""
    by_type = bool(rest) and rest[0] == "by_type" and len(rest) > 1
    section = "retention.by_type" if by_type else "retention"
    header = re.compile(rf"^\s*\[\s*{re.escape(section)}\s*\]")
    start = next((n for n, line in enumerate(text.splitlines(), 1) if header.match(line)), None)
    name = rest[1] if by_type else (rest[0] if rest else None)
    found = _key_line(text, name, start) if name and start else None
    return found or start


def _table_line(text: str, table: str, index: int) -> int | None:
    """The 1-based line of the ``index``-th ``[[table]]`` header."""
    header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
    count = -1
    for number, line in enumerate(text.splitlines(), 1):
        if header.match(line):
            count += 1
            if count == index:
                return number
    return None


def _key_line(text: str, key: str, start: int | None = None) -> int | None:
    """The line of ``key = ...`` in the table starting at line ``start`` (top level if ``None``)."""
    lines = text.splitlines()
    pattern = re.compile(rf'^\s*"?{re.escape(key)}"?\s*=')
    for number in range(start or 1, len(lines) + 1):
        line = lines[number - 1]
        if number != start and _HEADER.match(line):
            return None
        if pattern.match(line):
            return number
    return None
