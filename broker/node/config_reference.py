"""The ``node.toml`` reference (docs/node-toml.md), generated from :class:`NodeConfig`.

Every key, its type, default, ``NBX_*`` environment override and meaning come from the config
model itself: the meaning is the field's ``description`` or the ``#:`` comment written above the
field in :mod:`broker.node.config`. ``nbx node config-reference --out docs/node-toml.md``
rewrites the file; tests/node/test_config_reference.py fails when the file and the model differ.
"""

from __future__ import annotations

import inspect
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from broker.node.config import NodeConfig

#: where the generated reference lives, relative to the repository root
REFERENCE_PATH = Path("docs/node-toml.md")
#: the folder of the installed ``broker`` package: a default path inside it is shown relative to
#: the repository ("bundled with NBX"), so the text does not depend on where NBX is installed
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_FIELD_LINE = re.compile(r"^\s*(\w+)\s*:")


@dataclass(frozen=True)
class Key:
    """One key of ``node.toml``."""

    section: str | None
    name: str
    type: str
    default: str | None  # None: required
    env: str
    meaning: str

    @property
    def dotted(self) -> str:
        """``kafka.bootstrap``, or ``bureau`` for a top-level key."""
        return f"{self.section}.{self.name}" if self.section else self.name


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The ``#:`` comment lines written above each field of ``model``'s class body, joined."""
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):  # pragma: no cover - source always present in a checkout
        return {}
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = _FIELD_LINE.match(line)
        if match and pending:
            comments[match.group(1)] = " ".join(pending)
        pending = []
    return comments


def _type_text(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(f"`{_toml(v)}`" for v in get_args(annotation))
    if origin in (Union, types.UnionType):
        parts = [a for a in get_args(annotation) if a is not type(None)]
        return " or ".join(_type_text(a) for a in parts) + " (optional)"
    names = {Path: "path", str: "string", float: "number", int: "integer", bool: "boolean"}
    for kind, name in names.items():
        if annotation is kind:
            return name
    if isinstance(annotation, type) and issubclass(annotation, str):
        return "string"  # e.g. BureauId
    return getattr(annotation, "__name__", str(annotation))


def _bounds(info: FieldInfo) -> str:
    signs = {
        annotated_types.Gt: ("gt", ">"),
        annotated_types.Ge: ("ge", "≥"),
        annotated_types.Lt: ("lt", "<"),
        annotated_types.Le: ("le", "≤"),
        annotated_types.MinLen: ("min_length", "length ≥"),
        annotated_types.MaxLen: ("max_length", "length ≤"),
    }
    out: list[str] = []
    for item in info.metadata:
        for kind, (attr, sign) in signs.items():
            if isinstance(item, kind):
                out.append(f"{sign} {_toml(getattr(item, attr))}")
    return f" ({', '.join(out)})" if out else ""


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        if value.is_absolute():
            try:
                return f'"{value.relative_to(_PACKAGE_ROOT)}" (bundled with NBX)'
            except ValueError:
                return f'"{value}"'
        return f'"{value}"'
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _default(info: FieldInfo) -> str | None:
    if info.is_required():
        return None
    value = info.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return "unset"
    return _toml(value)


def _keys_of(model: type[BaseModel], section: str | None) -> list[Key]:
    comments = field_comments(model)
    keys: list[Key] = []
    for name, info in model.model_fields.items():
        if info.exclude:
            continue  # set by the loader, not a key of the file
        env = f"NBX_{name.upper()}" if section is None else f"NBX_{section.upper()}__{name.upper()}"
        keys.append(
            Key(
                section=section,
                name=name,
                type=_type_text(info.annotation) + _bounds(info),
                default=_default(info),
                env=env,
                meaning=info.description or comments.get(name, ""),
            )
        )
    return keys


def sections() -> list[tuple[str | None, type[BaseModel] | None, list[Key]]]:
    """``(section name, its model, its keys)`` in the model's order; the top-level keys first
    (section ``None``)."""
    top: list[Key] = []
    out: list[tuple[str | None, type[BaseModel] | None, list[Key]]] = []
    comments = field_comments(NodeConfig)
    for name, info in NodeConfig.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.append((name, annotation, _keys_of(annotation, name)))
        elif not info.exclude:
            top.append(
                Key(
                    section=None,
                    name=name,
                    type=_type_text(annotation),
                    default=_default(info),
                    env=f"NBX_{name.upper()}",
                    meaning=info.description or comments.get(name, ""),
                )
            )
    return [(None, None, top), *out]


def all_keys() -> list[Key]:
    """Every key of ``node.toml``, in the reference's order."""
    return [key for _, _, keys in sections() for key in keys]


def _cell(text: str) -> str:
    return text.replace("``", "`").replace("|", "\\|").replace("\n", " ")


_INTRO = """\
# `node.toml` reference

<!-- Generated from broker/node/config.py (NodeConfig) by
     `nbx node config-reference --out docs/node-toml.md`; do not edit by hand:
     tests/node/test_config_reference.py fails when this file and the model differ. -->

Every bureau node (the daemon `nbx consume` and every command given `--config`) reads one TOML
file. `nbx node init` and `nbx network init` write a working one per bureau; this page lists every
key it may hold.

* **Required** keys have no default: a file without them is refused with one line naming the key
  (`nbx: error: node.toml: kafka.bootstrap: Field required`). A section whose keys all have
  defaults may be left out.
* **Unknown keys are refused** (a typo does not silently fall back to a default).
* **Environment variables override the file**: `NBX_` followed by the key, with the section and
  the key joined by two underscores, e.g. `NBX_BUREAU=DE`, `NBX_KAFKA__BOOTSTRAP=host:9092`,
  `NBX_SECURITY__MIN_SUITE=2`. The column "environment" gives the name for every key.
* **Relative paths** are relative to the folder of the file, not to the working directory
  (`keys.dir`, `trust.anchor`, `trust.directory`, `policy.dir`, the `kafka.ssl_*` files, the path
  in `sink.url`, `screening.offences`, `screening.protected`).
* Secrets never go into the file: it names the *environment variable* that holds them
  (`keys.passphrase_env`, `kafka.sasl_password_env`, `screening.secret_env`).

A minimal file (the keys without a default):

```toml
{minimal}
```
"""


def _minimal() -> str:
    examples = {
        "bureau": '"FR"',
        "keys.dir": '"keys"',
        "trust.anchor": '"keys/trust-anchor.pub"',
        "trust.directory": '"directory.json"',
        "kafka.bootstrap": '"127.0.0.1:9092"',
        "policy.dir": '"policies"',
        "sink.url": '"sqlite:///FR.sqlite"',
    }
    lines: list[str] = []
    for section, _, keys in sections():
        required = [k for k in keys if k.default is None]
        if not required:
            continue
        if section is not None:
            lines.append(f"\n[{section}]")
        lines.extend(f"{k.name} = {examples.get(k.dotted, '...')}" for k in required)
    return "\n".join(lines)


def render() -> str:
    """The text of docs/node-toml.md."""
    parts = [_INTRO.replace("{minimal}", _minimal())]
    for section, model, keys in sections():
        if section is None:
            parts.append("## Top-level keys\n")
        else:
            doc = inspect.cleandoc(model.__doc__ or "") if model is not None else ""
            parts.append(f"## `[{section}]`\n")
            if doc:
                parts.append(_cell(" ".join(doc.split())) + "\n")
        parts.append("| key | type | default | environment | meaning |")
        parts.append("|---|---|---|---|---|")
        for key in keys:
            default = "**required**" if key.default is None else f"`{key.default}`"
            default = default.replace(" (bundled with NBX)`", "` (bundled with NBX)")
            parts.append(
                f"| `{key.name}` | {_cell(key.type)} | {_cell(default)} | `{key.env}` "
                f"| {_cell(key.meaning)} |"
            )
        parts.append("")
    return "\n".join(parts).rstrip("\n") + "\n"
