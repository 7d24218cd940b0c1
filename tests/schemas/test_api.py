"""The public API of broker.schemas is curated: a sorted __all__ that names what is exported."""

import broker.schemas as schemas
from broker.schemas import DataCategory, HandlingCode, MessageKind, NoticeType, SubjectCategory


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted (constants, classes, functions: ruff RUF022) and every name exists."""
    key = lambda n: (not n.isupper(), not n[0].isupper(), n)  # noqa: E731 - local sort key
    assert schemas.__all__ == sorted(schemas.__all__, key=key)
    for name in schemas.__all__:
        assert hasattr(schemas, name), name


def test_contract_enum_values() -> None:
    """The enum values other modules rely on are exactly these."""
    assert [c.value for c in DataCategory] == [
        "identity", "physical", "biometric", "judicial", "location", "contact",
        "special.ethnic_origin", "special.religion", "special.political_opinion",
        "special.health", "special.sexual_life", "operational",
    ]  # fmt: skip
    assert [t.value for t in NoticeType] == [
        "red", "yellow", "blue", "black", "green", "orange", "purple", "silver", "un", "diffusion"
    ]  # fmt: skip
    assert [h.value for h in HandlingCode] == ["H0", "H1", "H2", "H3"]
    assert [s.value for s in SubjectCategory] == [
        "suspect", "accused", "convicted", "victim", "witness", "missing", "unidentified",
        "person_of_interest", "associate", "possible_threat", "listed", "deceased",
    ]  # fmt: skip
    assert [k.value for k in MessageKind] == [
        "publish", "update", "suspend", "cancel", "erasure", "receipt",
        "review", "block", "unblock", "delete", "response",
    ]  # fmt: skip
