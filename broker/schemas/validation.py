"""Parsing and validation entry points, and :class:`NoticeInvalid` listing every error by path.

``validate_notice`` checks the schema only (what an import or a draft must meet); ``parse_notice``
also applies the publication criteria of :mod:`broker.schemas.criteria`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import cast

from pydantic import ValidationError

from broker.errors import SchemaError
from broker.schemas.common import NoticeType
from broker.schemas.criteria import publication_errors
from broker.schemas.notices import NOTICE_MODELS, Notice, NoticeBase

#: Path used for errors about the document as a whole.
ROOT = "$"

_RELATIVE = re.compile(r"^([a-z_][a-z0-9_.]*): (.+)$")


class NoticeInvalid(SchemaError):  # noqa: N818 - named like the outcome, as EnvelopeRejected
    """A notice or message failed validation; ``errors`` lists ``(dotted.path, message)`` pairs.

    Its text is one line per error, ``path: message``; an error about the document as a whole
    (path :data:`ROOT`) is its message alone (``invalid JSON: ...``).
    """

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors: list[tuple[str, str]] = list(errors)
        super().__init__("\n".join(error_text(path, msg) for path, msg in self.errors))


def error_text(path: str, message: str) -> str:
    """One validation error as text: ``path: message``, or the message alone at :data:`ROOT`."""
    return message if path == ROOT else f"{path}: {message}"


def dotted(loc: Sequence[str | int], prefix: str = "") -> str:
    """A pydantic error location as a dotted path (list indices as numbers), under ``prefix``."""
    parts = [prefix] if prefix else []
    parts.extend(str(p) for p in loc)
    return ".".join(parts) or ROOT


def pydantic_errors(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted.path, message)`` for each error of ``exc``.

    A model validator may report several problems as ``field: message`` lines; each becomes its
    own error under the model's path.
    """
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        msg = str(err["msg"])
        loc = [p for p in err["loc"] if isinstance(p, str | int)]
        if err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
            lines = msg.split("; ")
            if all(_RELATIVE.match(line) for line in lines):
                for line in lines:
                    m = _RELATIVE.match(line)
                    if m:
                        out.append((dotted([*loc, m.group(1)], prefix), m.group(2)))
                continue
        out.append((dotted(loc, prefix), msg))
    return out


def load_json(data: bytes | str | Mapping[str, object]) -> Mapping[str, object]:
    """The JSON object in ``data`` (bytes/str are parsed), else :class:`NoticeInvalid`."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise NoticeInvalid([(ROOT, f"invalid JSON: {exc}")]) from None
    if not isinstance(data, Mapping):
        raise NoticeInvalid([(ROOT, "a notice must be a JSON object")])
    return data


def model_for(data: Mapping[str, object]) -> type[NoticeBase]:
    """The notice model named by ``data["notice_type"]``, else :class:`NoticeInvalid`."""
    if "notice_type" not in data:
        raise NoticeInvalid([("notice_type", "Field required")])
    raw = data["notice_type"]
    try:
        return NOTICE_MODELS[NoticeType(str(raw))] if isinstance(raw, str) else _bad_type(raw)
    except ValueError:
        return _bad_type(raw)


def _bad_type(raw: object) -> type[NoticeBase]:
    allowed = ", ".join(repr(t.value) for t in NoticeType)
    raise NoticeInvalid([("notice_type", f"Input should be one of {allowed} (got {raw!r})")])


def validate_notice(data: bytes | str | Mapping[str, object]) -> Notice:
    """Schema validation only: the notice model for ``data``, or :class:`NoticeInvalid`."""
    obj = load_json(data)
    model = model_for(obj)
    try:
        return cast("Notice", model.model_validate(obj))
    except ValidationError as exc:
        raise NoticeInvalid(pydantic_errors(exc)) from None


def parse_notice(data: bytes | str | Mapping[str, object]) -> Notice:
    """Validate ``data`` against the schema and the publication criteria.

    Returns the notice (one of the models of :data:`broker.schemas.Notice`); raises
    :class:`NoticeInvalid` (a :class:`~broker.errors.SchemaError`) listing every error as
    ``dotted.path: message``, one per line.
    """
    notice = validate_notice(data)
    errors = publication_errors(notice)
    if errors:
        raise NoticeInvalid(errors)
    return notice
