"""Disclosure units: the notice split into the header every recipient gets and tagged fields.

The split is read from the models' field tags (``x-nbx-category`` / ``x-nbx-header``):

* a root field marked header is non-redactable;
* a tagged field is one disclosure unit (a list is one unit, paths carry no list index);
* an untagged field holding a model (``person``, ``person.physical``, ``judicial``...) is a block:
  its own fields are walked in turn.

The receiving side rebuilds a partial view with :func:`assemble_view` and checks it with
:func:`validate_view`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Annotated, Any, NotRequired, TypeAlias, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, TypeAdapter, ValidationError, with_config
from pydantic.fields import FieldInfo
from typing_extensions import TypedDict

from broker.schemas.categories import DataCategory, category_of, is_header
from broker.schemas.common import LongText, NoticeType
from broker.schemas.notices import NOTICE_MODELS, NoticeBase, check_header_dates
from broker.schemas.validation import ROOT, NoticeInvalid, model_for, pydantic_errors

#: A JSON-compatible value.
JSON: TypeAlias = str | int | float | bool | list[Any] | dict[str, Any] | None

_CREATED: TypeAdapter[AwareDatetime] = TypeAdapter(AwareDatetime)
_DATE: TypeAdapter[date] = TypeAdapter(date)


@dataclass(frozen=True)
class DisclosureUnit:
    """One field that can be disclosed or withheld: its dotted path, category and JSON value."""

    path: str
    category: DataCategory
    value: JSON


def _block_model(field: FieldInfo) -> type[BaseModel] | None:
    """The model class of a block field (``Model`` or ``Model | None``), else ``None``."""
    ann = field.annotation
    candidates = (
        typing.get_args(ann) if typing.get_origin(ann) in (Union, types.UnionType) else (ann,)
    )
    models = [a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel)]
    others = [a for a in candidates if a is not type(None) and a not in models]
    return models[0] if len(models) == 1 and not others else None


@dataclass(frozen=True)
class _Slot:
    kind: str  # "header" | "unit" | "block"
    category: DataCategory | None
    block: type[BaseModel] | None


@cache
def _slots(model: type[BaseModel], root: bool) -> dict[str, _Slot]:
    slots: dict[str, _Slot] = {}
    for name, field in model.model_fields.items():
        category = category_of(field)
        if category is not None:
            slots[name] = _Slot("unit", category, None)
        elif root and is_header(field):
            slots[name] = _Slot("header", None, None)
        elif (block := _block_model(field)) is not None:
            slots[name] = _Slot("block", None, block)
        else:
            where = "header or tagged" if root else "tagged"
            raise TypeError(f"{model.__name__}.{name} is neither {where} nor a block")
    return slots


def _walk(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, _Slot]]:
    for name, slot in _slots(model, not prefix).items():
        path = f"{prefix}{name}"
        if slot.block is not None:
            yield from _walk(slot.block, f"{path}.")
        else:
            yield path, slot


def field_categories(notice_type: NoticeType | str) -> dict[str, DataCategory]:
    """Every redactable dotted path of ``notice_type`` with its category, sorted by path."""
    model = NOTICE_MODELS[NoticeType(notice_type)]
    found = {path: slot.category for path, slot in _walk(model) if slot.category is not None}
    return dict(sorted(found.items()))


#: The constraints that make a string a free text (:data:`~broker.schemas.common.LongText`).
_LONG_TEXT_METADATA = tuple(typing.get_args(LongText)[1].metadata)


def _holds_free_text(annotation: Any, metadata: Sequence[Any] = ()) -> bool:
    """Whether a value of ``annotation`` (with field constraints ``metadata``) may hold a free
    text: a :data:`LongText` itself, or inside a list, an optional or a nested model."""
    if annotation is str and tuple(metadata) == _LONG_TEXT_METADATA:
        return True
    if typing.get_origin(annotation) is Annotated:
        inner, *extra = typing.get_args(annotation)
        found = [m for e in extra for m in (e.metadata if isinstance(e, FieldInfo) else [e])]
        return _holds_free_text(inner, found)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(
            _holds_free_text(f.annotation, f.metadata) for f in annotation.model_fields.values()
        )
    return any(_holds_free_text(arg) for arg in typing.get_args(annotation))


@cache
def free_text_paths(notice_type: NoticeType | str) -> frozenset[str]:
    """The unit paths of ``notice_type`` that hold free text (a summary of facts, charges,
    circumstances, descriptions: any :data:`~broker.schemas.common.LongText`, also inside a
    list or a nested model): text that may name any person of the notice, whatever its category.
    """
    model = NOTICE_MODELS[NoticeType(notice_type)]
    return frozenset(path for path, _ in _walk(model) if _unit_holds_free_text(model, path))


def _unit_holds_free_text(model: type[BaseModel], path: str) -> bool:
    *blocks, name = path.split(".")
    owner = model
    for block in blocks:
        found = _slots(owner, owner is model).get(block)
        if found is None or found.block is None:
            return False
        owner = found.block
    field = owner.model_fields[name]
    return _slots(owner, owner is model)[name].kind == "unit" and _holds_free_text(
        field.annotation, field.metadata
    )


def header_fields(notice_type: NoticeType | str) -> list[str]:
    """The names of the always-disclosed root fields of ``notice_type``."""
    return list(_header_names(NOTICE_MODELS[NoticeType(notice_type)]))


@cache
def _header_names(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(name for name, slot in _slots(model, True).items() if slot.kind == "header")


def _present(value: object) -> bool:
    return value is not None and value != [] and value != {} and value != ""


@cache
def _unit_slots(
    model: type[BaseModel],
) -> tuple[tuple[str, tuple[str, ...], DataCategory], ...]:
    """Every unit path of ``model`` (split, with its category), sorted by path; computed once."""
    found = [
        (path, tuple(path.split(".")), slot.category)
        for path, slot in _walk(model)
        if slot.category is not None
    ]
    return tuple(sorted(found))


def disclosure_units(notice: NoticeBase) -> list[DisclosureUnit]:
    """Every present redactable field of ``notice`` as one unit, sorted by path."""
    data = notice.model_dump(mode="json")
    units: list[DisclosureUnit] = []
    for path, parts, category in _unit_slots(type(notice)):
        value: Any = data
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        if _present(value):
            units.append(DisclosureUnit(path, category, value))
    return units


def non_redactable(notice: NoticeBase) -> dict[str, JSON]:
    """The header every recipient always gets (no personal data), in JSON mode."""
    names = _header_names(type(notice))
    # dumping only the header fields: a third of the cost of dumping the whole notice
    data = notice.model_dump(mode="json", exclude_none=True, include=_header_set(type(notice)))
    return {name: data[name] for name in names if name in data}


@cache
def _required_header(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(n for n in _header_names(model) if model.model_fields[n].is_required())


@cache
def _header_set(model: type[BaseModel]) -> set[str]:
    return set(_header_names(model))  # shared: pydantic only reads it


def assemble_view(
    non_redactable: Mapping[str, JSON], disclosed: Mapping[str, JSON]
) -> dict[str, JSON]:
    """Rebuild a nested notice dict from the header and the disclosed ``{path: value}`` units.

    Required blocks of the notice type are always present (possibly empty); an optional block
    appears only when one of its units is disclosed.
    """
    view: dict[str, Any] = {key: _copy(value) for key, value in non_redactable.items()}
    kind = non_redactable.get("notice_type")
    if isinstance(kind, str) and kind in NOTICE_MODELS:
        # A required block whose units are all absent or withheld is still there, empty.
        model = NOTICE_MODELS[NoticeType(kind)]
        for name, slot in _slots(model, True).items():
            if slot.block is not None and model.model_fields[name].is_required():
                view[name] = {}
    for path in sorted(disclosed):
        parts = path.split(".")
        if not all(parts) or parts[0] in non_redactable:
            raise NoticeInvalid([(path or ROOT, "not a disclosure unit path")])
        node = view
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise NoticeInvalid([(path, "not a disclosure unit path")])
            node = child
        if parts[-1] in node:
            raise NoticeInvalid([(path, "disclosed twice")])
        node[parts[-1]] = _copy(disclosed[path])
    return view


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@cache
def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    field = model.model_fields[name]
    # Rebuild the field's type with its constraints (max_length, ge...) so it validates alone.
    annotation: Any = field.annotation
    if not field.metadata:
        return TypeAdapter(annotation)
    return TypeAdapter(Annotated[annotation, *field.metadata])


def _check(
    model: type[BaseModel],
    data: Mapping[str, Any],
    prefix: str,
    errors: list[tuple[str, str]],
    copy: bool = True,
) -> dict[str, Any]:
    slots = _slots(model, not prefix)
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        slot = slots.get(key)
        if slot is None:
            errors.append((path, "Extra inputs are not permitted"))
        elif slot.block is not None:
            if isinstance(value, Mapping):
                out[key] = _check(slot.block, value, f"{path}.", errors, copy)
            elif value is None and not model.model_fields[key].is_required():
                out[key] = None
            else:
                errors.append((path, "Input should be an object"))
        else:
            adapter = _adapter(model, key)
            try:
                adapter.validate_python(value)
                out[key] = _copy(value) if copy else value
            except ValidationError as exc:
                errors.extend(pydantic_errors(exc, path))
    return out


@cache
def _view_type(model: type[BaseModel], root: bool) -> Any:
    """A ``TypedDict`` of ``model`` in which every field may be absent: the fields keep the
    annotation and constraints the per-field adapters of :func:`_check` use, blocks are nested
    such types (``None`` allowed where the block is optional), unknown keys are refused."""
    fields: dict[str, Any] = {}
    for name, slot in _slots(model, root).items():
        field = model.model_fields[name]
        annotation: Any
        if slot.block is not None:
            inner = _view_type(slot.block, False)
            annotation = inner if field.is_required() else inner | None
        elif field.metadata:
            annotation = Annotated[field.annotation, *field.metadata]
        else:
            annotation = field.annotation
        fields[name] = NotRequired[annotation]
    view_type: Any = TypedDict(f"{model.__name__}View", fields)  # type: ignore[misc]
    return with_config(ConfigDict(extra="forbid"))(view_type)


@cache
def _view_validator(model: type[BaseModel]) -> TypeAdapter[Any]:
    return TypeAdapter(_view_type(model, True))


def _passes(model: type[BaseModel], view: Mapping[str, Any]) -> bool:
    """One validation call for the whole view (about half the cost of :func:`_check`'s field by
    field calls). It accepts only what :func:`_check` accepts; whatever it refuses goes through
    :func:`_check`, which decides and names every error."""
    try:
        _view_validator(model).validate_python(view)
    except ValidationError:
        return False
    return True


def _rebuild(
    model: type[BaseModel], data: Mapping[str, Any], root: bool, copy: bool
) -> dict[str, Any]:
    """What :func:`_check` returns for valid ``data``: new dicts for blocks, and each field's
    value itself (``copy=False``) or a deep copy of it."""
    slots = _slots(model, root)
    out: dict[str, Any] = {}
    for key, value in data.items():
        block = slots[key].block
        if block is not None and value is not None:
            out[key] = _rebuild(block, value, False, copy)
        else:
            out[key] = _copy(value) if copy else value
    return out


def validate_view(view: Mapping[str, Any], *, copy: bool = True) -> dict[str, JSON]:
    """Check a possibly partial notice view: withheld fields may be missing, every present field
    must be valid and known, and the header must be complete.

    Returns the view, as a deep copy unless ``copy=False`` (the daemon, which stores the view it
    checked, saves about 170 copies per red notice); raises :class:`NoticeInvalid` listing every
    error.
    """
    if not isinstance(view, Mapping):
        raise NoticeInvalid([(ROOT, "a notice must be a JSON object")])
    model = model_for(view)
    errors: list[tuple[str, str]] = []
    if _passes(model, view):
        out = _rebuild(model, view, True, copy)
    else:
        out = _check(model, view, "", errors, copy)
    for name in _required_header(model):
        if name not in view:
            errors.append((name, "Field required"))
    if not errors:
        for line in check_header_dates(
            _CREATED.validate_python(out["created_at"]).date(),
            _DATE.validate_python(out["retention_until"]),
            _DATE.validate_python(out["review_due"]),
        ):
            path, _, msg = line.partition(": ")
            errors.append((path, msg))
    if errors:
        raise NoticeInvalid(sorted(errors))
    return out
