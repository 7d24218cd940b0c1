"""validate_view's one-call check accepts only what the field-by-field check accepts.

``validate_view`` first validates the whole view in one pydantic call (``_passes``) and falls back
to the field-by-field ``_check``, which names every error, when that call refuses. The fast call
must never accept a view ``_check`` refuses; these tests mutate valid views of every notice type
at random (values of every JSON type, missing and unknown keys, null and mistyped blocks) and
compare the two.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.schemas import (
    NoticeInvalid,
    NoticeType,
    assemble_view,
    disclosure_units,
    non_redactable,
    parse_notice,
    validate_view,
)
from broker.schemas.units import _check, _passes
from broker.schemas.validation import model_for

from .conftest import example

# strings that are valid for some fields and not for others
LIKELY = ["", "FR", "fr", "en", "eng", "X1", "1979", "1979-13", "2024-02-30",
          "2025-01-01T00:00:00Z", "ROSSETTI", "H1", "red"]  # fmt: skip
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**6), max_value=10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(LIKELY)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _full_view(kind: str) -> dict[str, Any]:
    notice = parse_notice(example(kind))
    units = {u.path: u.value for u in disclosure_units(notice)}
    return assemble_view(non_redactable(notice), units)


VIEWS = {t.value: _full_view(t.value) for t in NoticeType}


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path into nested dicts (not into lists)."""
    out: list[tuple[str, ...]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            out.append((*prefix, key))
            out += _paths(child, (*prefix, key))
    return out


@st.composite
def mutated_views(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(VIEWS)))
    view = copy.deepcopy(VIEWS[kind])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(view) if p[0] != "notice_type"]  # keep the model choice
        path = draw(st.sampled_from(paths))
        parent = view
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add", "null"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "add":
            parent[draw(st.text(min_size=1, max_size=6))] = draw(json_values)
        else:
            parent[path[-1]] = None
    return view


def _check_errors(view: dict[str, Any]) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    _check(model_for(view), view, "", errors, False)
    return errors


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_views())
def test_fast_check_accepts_only_what_the_field_check_accepts(view: dict[str, Any]) -> None:
    """Whatever the one-call check accepts, the field-by-field check accepts too."""
    if _passes(model_for(view), view):
        assert _check_errors(view) == []


@pytest.mark.parametrize("kind", sorted(VIEWS))
def test_full_and_partial_views_take_the_fast_path_with_the_same_result(kind: str) -> None:
    """Valid views (whole, or with every other unit withheld) pass the one-call check, and
    validate_view returns what the field-by-field check returns, copied or shared alike."""
    notice = parse_notice(example(kind))
    units = disclosure_units(notice)
    for kept in (units, units[::2]):
        view = assemble_view(non_redactable(notice), {u.path: u.value for u in kept})
        model = model_for(view)
        assert _passes(model, view)
        slow: list[tuple[str, str]] = []
        assert validate_view(view) == _check(model, view, "", slow, True) == view
        assert slow == []
        shared = validate_view(view, copy=False)
        for key, value in view.items():
            if not isinstance(value, dict):
                assert shared[key] is value


def test_refused_views_still_list_every_error() -> None:
    """A view the fast check refuses is reported by the field-by-field check, every error named."""
    view = copy.deepcopy(VIEWS["red"])
    view["person"]["shoe_size"] = 44
    view["person"]["physical"]["height_cm"] = "tall"
    assert not _passes(model_for(view), view)
    with pytest.raises(NoticeInvalid) as info:
        validate_view(view)
    assert info.value.errors == [
        ("person.physical.height_cm",
         "Input should be a valid integer, unable to parse string as an integer"),
        ("person.shoe_size", "Extra inputs are not permitted"),
    ]  # fmt: skip
