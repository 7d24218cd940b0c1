"""Property tests: generated notices survive JSON and the unit split unchanged."""

import string
from datetime import UTC, datetime
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.schemas import (
    NoticeType,
    assemble_view,
    disclosure_units,
    non_redactable,
    validate_notice,
)

from .conftest import example

text = st.text(alphabet=string.ascii_letters + " éøß'-", min_size=1, max_size=30).filter(
    lambda s: s.strip() == s and s
)
partial_dates = (
    st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}")
    | st.integers(1900, 2024).map(str)
    | st.tuples(st.integers(1900, 2024), st.integers(1, 12)).map(lambda t: f"{t[0]}-{t[1]:02d}")
)
countries = st.sampled_from(["FR", "DE", "IT", "ES", "NL", "PL", "AR", "JP"])
sha = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
refs = st.builds(
    lambda name, h: {"uri": f"https://nbx.example/{name}", "sha256": h, "media_type": "image/png"},
    st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8),
    sha,
)


T = TypeVar("T")


def optional(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | strategy


@st.composite
def persons(draw: st.DrawFn) -> dict[str, Any]:
    person: dict[str, Any] = {
        "family_name": draw(optional(text)),
        "forenames": draw(optional(text)),
        "sex": draw(optional(st.sampled_from(["M", "F", "U"]))),
        "date_of_birth": draw(optional(partial_dates)),
        "nationalities": draw(st.lists(countries, max_size=3)),
        "languages": draw(st.lists(st.sampled_from(["en", "fr", "ast", "ar"]), max_size=2)),
        "aliases": draw(st.lists(st.builds(lambda f: {"family_name": f}, text), max_size=2)),
    }
    if draw(st.booleans()):
        person["physical"] = {
            "height_cm": draw(optional(st.integers(30, 260))),
            "eye_colour": draw(optional(st.sampled_from(["blue", "brown", "other"]))),
        }
    if draw(st.booleans()):
        person["biometrics"] = {
            "photos": draw(st.lists(refs, max_size=2)),
            "dna_profile": draw(optional(refs)),
        }
    if draw(st.booleans()):
        person["special"] = {"health": draw(optional(text)), "religion": draw(optional(text))}
    return person


@st.composite
def notices(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(list(NoticeType)))
    data = example(kind.value)
    data["version"] = draw(st.integers(1, 1000))
    data["handling"] = draw(
        st.sampled_from([{"code": "H0"}, {"code": "H2"}])
        | st.builds(lambda t: {"code": "H3", "conditions": t}, text)
    )
    data["created_at"] = draw(
        st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2090, 1, 1),
            timezones=st.just(UTC),
        )
    ).isoformat()
    data["review_due"] = data["created_at"][:10]
    data["retention_until"] = "2100-01-01"
    if kind in {NoticeType.RED, NoticeType.YELLOW, NoticeType.BLUE, NoticeType.GREEN} or draw(
        st.booleans()
    ):
        data["person"] = draw(persons())
    elif kind is not NoticeType.UN:
        data.pop("person", None)
    if kind is NoticeType.RED:
        data["judicial"]["charges"] = draw(
            st.lists(
                st.builds(
                    lambda d, m: {"description": d, "maximum_penalty_months": m},
                    text,
                    optional(st.integers(0, 1200)),
                ),
                max_size=3,
            )
        )
    return data


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(notices())
def test_json_round_trip_is_identity(data: dict[str, Any]) -> None:
    """model -> JSON -> model gives back an equal model for generated notices of every type."""
    notice = validate_notice(data)
    again = type(notice).model_validate_json(notice.model_dump_json())
    assert again == notice
    assert validate_notice(notice.model_dump(mode="json")) == notice


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(notices())
def test_units_split_is_lossless(data: dict[str, Any]) -> None:
    """Header + all disclosure units reassemble into the same notice (empty blocks aside)."""
    notice = validate_notice(data)
    units = disclosure_units(notice)
    assert len({u.path for u in units}) == len(units)
    view = assemble_view(non_redactable(notice), {u.path: u.value for u in units})
    rebuilt = validate_notice(view)
    assert disclosure_units(rebuilt) == units
    assert non_redactable(rebuilt) == non_redactable(notice)
