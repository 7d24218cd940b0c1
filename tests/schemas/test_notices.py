"""Notice models and publication criteria: valid examples and the main refusals, exact messages."""

from collections.abc import Callable
from typing import Any

import pytest

from broker.errors import SchemaError
from broker.schemas import NoticeInvalid, NoticeType, RedNotice, parse_notice, validate_notice

from .conftest import example


def errors_of(data: bytes | str | dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(NoticeInvalid) as info:
        parse_notice(data)
    assert isinstance(info.value, SchemaError)
    return info.value.errors


@pytest.mark.parametrize("kind", [t.value for t in NoticeType])
def test_example_of_every_type_is_valid(kind: str) -> None:
    """Each shipped example parses into the model of its own type (the discriminator works)."""
    notice = parse_notice(example(kind))
    assert notice.notice_type == kind
    assert type(notice).__name__.lower().startswith(kind[:3])


def test_message_lists_every_error_one_per_line() -> None:
    """The exception text is `path: message` per line, the same pairs as `exc.errors`."""
    data = example("red")
    data["issuing_bureau"] = "QQ"
    data["person"]["nationalities"] = ["FR", "fr"]
    with pytest.raises(NoticeInvalid) as info:
        parse_notice(data)
    assert str(info.value).splitlines() == [f"{p}: {m}" for p, m in info.value.errors]
    assert info.value.errors == [
        ("issuing_bureau", "unknown ISO 3166-1 alpha-2 country code 'QQ'"),
        ("person.nationalities.1", "String should match pattern '^[A-Z]{2}$'"),
    ]


def test_code_checks_remembered_for_valid_codes_still_refuse_unknown_ones_every_time() -> None:
    """Country and language checks cache only valid codes: an unknown code fails each time,
    a valid one keeps passing."""
    for _ in range(2):
        for field, value, message in (
            ("issuing_bureau", "QQ", "unknown ISO 3166-1 alpha-2 country code 'QQ'"),
            ("language", "qq", "unknown ISO 639-1 language code 'qq'"),
        ):
            data = example("red")
            data[field] = value
            with pytest.raises(NoticeInvalid) as info:
                parse_notice(data)
            assert info.value.errors == [(field, message)]
        assert parse_notice(example("red")).issuing_bureau == example("red")["issuing_bureau"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("notice_type"), [("notice_type", "Field required")]),
        (
            lambda d: d.update(notice_type="pink"),
            [
                (
                    "notice_type",
                    "Input should be one of 'red', 'yellow', 'blue', 'black', 'green', 'orange', "
                    "'purple', 'silver', 'un', 'diffusion' (got 'pink')",
                )
            ],
        ),
        (lambda d: d.update(colour="red"), [("colour", "Extra inputs are not permitted")]),
        (
            lambda d: d.update(version=0),
            [("version", "Input should be greater than or equal to 1")],
        ),
        (
            lambda d: d.update(language="eng"),
            [("language", "use the ISO 639-1 code 'en' instead of 'eng'")],
        ),
        (
            lambda d: d.update(handling={"code": "H3"}),
            [("handling.conditions", "H3 requires the conditions text")],
        ),
        (
            lambda d: d.update(handling={"code": "H0", "conditions": "x"}),
            [("handling.conditions", "only allowed with H3, not H0")],
        ),
        (
            lambda d: d.update(review_due="2025-01-01"),
            [("review_due", "must not be before created_at")],
        ),
        (
            lambda d: d["person"].update(date_of_birth="1979-02-30"),
            [("person.date_of_birth", "'1979-02-30' is not a calendar date")],
        ),
        (
            lambda d: d["person"]["biometrics"]["photos"][0].update(sha256="abc"),
            [
                (
                    "person.biometrics.photos.0.sha256",
                    "String should match pattern '^[0-9a-f]{64}$'",
                )
            ],
        ),
        (
            lambda d: d.update(created_at="2025-03-01T09:00:00"),
            [("created_at", "Input should have timezone info")],
        ),
    ],
)
def test_schema_errors_name_the_field(
    red: dict[str, Any], mutate: Callable[[dict[str, Any]], object], expected: list[tuple[str, str]]
) -> None:
    """Schema violations are reported with the dotted path of the offending field."""
    mutate(red)
    assert errors_of(red) == expected


def test_red_needs_identifiers(red: dict[str, Any]) -> None:
    """RPD Art. 83: family name, forenames, sex and date of birth, each named in its own error,
    and a description, biometric or identity document."""
    for name in ("family_name", "forenames", "sex", "date_of_birth"):
        del red["person"][name]
    for name in ("physical", "biometrics", "identity_documents"):
        del red["person"][name]
    assert errors_of(red) == [
        ("person.family_name", "required for a red notice (RPD Art. 83)"),
        ("person.forenames", "required for a red notice (RPD Art. 83)"),
        ("person.sex", "required for a red notice (RPD Art. 83)"),
        ("person.date_of_birth", "required for a red notice (RPD Art. 83)"),
        (
            "person",
            "a red notice needs a physical description, a biometric reference (photo, "
            "fingerprints or DNA profile) or an identity document (RPD Art. 83)",
        ),
    ]


def test_red_with_only_a_photo_is_refused(red: dict[str, Any]) -> None:
    """A photo does not replace the name and the date of birth (issue 19, point 4)."""
    del red["person"]["family_name"]
    del red["person"]["date_of_birth"]
    assert errors_of(red) == [
        ("person.family_name", "required for a red notice (RPD Art. 83)"),
        ("person.date_of_birth", "required for a red notice (RPD Art. 83)"),
    ]


@pytest.mark.parametrize("keep", ["physical", "biometrics", "identity_documents"])
def test_red_identifiers_accept_a_year_of_birth_and_any_one_description(
    red: dict[str, Any], keep: str
) -> None:
    """A year-only date of birth is enough; so is any one of description, biometric reference
    or identity document."""
    red["person"]["date_of_birth"] = "1979"
    for name in {"physical", "biometrics", "identity_documents"} - {keep}:
        del red["person"][name]
    assert parse_notice(red).person.date_of_birth == "1979"  # type: ignore[union-attr]


def test_red_needs_warrant_and_charges(red: dict[str, Any]) -> None:
    """A red notice without warrant or charges is refused, one message each."""
    red["judicial"]["warrants"] = []
    red["judicial"]["charges"] = []
    assert errors_of(red) == [
        ("judicial.warrants", "a red notice needs at least one warrant or judgment"),
        ("judicial.charges", "a red notice needs at least one charge"),
    ]


def test_red_prosecution_threshold(red: dict[str, Any]) -> None:
    """Prosecution for offences punishable by less than 2 years is refused."""
    for charge in red["judicial"]["charges"]:
        charge["maximum_penalty_months"] = 18
    assert errors_of(red) == [
        (
            "judicial.charges",
            "refused: for prosecution, an offence must be punishable by at least 2 years "
            "(give maximum_penalty_months or maximum_penalty_life)",
        )
    ]
    red["judicial"]["charges"][0]["maximum_penalty_months"] = 24
    assert parse_notice(red)


def test_red_sentence_threshold(red: dict[str, Any]) -> None:
    """Serving a sentence needs at least 6 months remaining; 6 is accepted, 5 is refused."""
    red["subject_category"] = "convicted"
    red["judicial"].update(purpose="sentence", sentence_imposed_months=36)
    red["judicial"]["sentence_remaining_months"] = 5
    assert errors_of(red) == [
        (
            "judicial.sentence_remaining_months",
            "refused: at least 6 months of the sentence must remain, not 5",
        )
    ]
    red["judicial"]["sentence_remaining_months"] = 6
    notice = parse_notice(red)
    assert isinstance(notice, RedNotice)
    assert notice.judicial.sentence_remaining_months == 6


@pytest.mark.parametrize(
    ("nature", "message"),
    [
        (
            "administrative",
            "refused: a red notice cannot be issued for an administrative violation",
        ),
        ("private_dispute", "refused: a red notice cannot be issued for a private dispute"),
    ],
)
def test_red_refuses_administrative_and_private_matters(
    red: dict[str, Any], nature: str, message: str
) -> None:
    """An administrative violation or a private dispute is refused with its reason."""
    red["judicial"]["charges"][1]["nature"] = nature
    assert errors_of(red) == [("judicial.charges.1.nature", message)]


def test_red_other_refusals(red: dict[str, Any]) -> None:
    """Time-barred, expired warrant, missing assurance, mismatched subject: each is reported."""
    red["judicial"]["limitation_date"] = "2024-12-31"
    red["judicial"]["warrants"][0]["expires_on"] = "2025-02-01"
    red["judicial"]["extradition_assurance"] = False
    red["subject_category"] = "witness"
    assert errors_of(red) == [
        (
            "subject_category",
            "a red notice's subject must be one of: accused, convicted, suspect",
        ),
        ("judicial.warrants.0.expires_on", "the warrant expired on 2025-02-01"),
        ("subject_category", "must be 'suspect' or 'accused' when the purpose is prosecution"),
        ("judicial.limitation_date", "refused: the limitation period ended on 2024-12-31"),
        (
            "judicial.extradition_assurance",
            "a red notice needs the assurance that extradition will be requested",
        ),
    ]


def test_validate_notice_skips_criteria(red: dict[str, Any]) -> None:
    """Schema-only validation accepts a draft the criteria would refuse."""
    red["judicial"]["charges"] = []
    notice = validate_notice(red)
    assert isinstance(notice, RedNotice)
    assert notice.judicial.charges == []


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [
        (
            "yellow",
            lambda d: d["missing"].pop("missing_since"),
            [
                (
                    "missing",
                    "a yellow notice needs missing_since (missing person) or found_on "
                    "(person unable to identify themselves)",
                )
            ],
        ),
        (
            "yellow",
            lambda d: d.update(subject_category="suspect"),
            [
                (
                    "subject_category",
                    "a yellow notice's subject must be one of: missing, unidentified, victim",
                )
            ],
        ),
        (
            "blue",
            lambda d: d["inquiry"].update(sought=[]),
            [("inquiry.sought", "name the information sought: identity, location or activities")],
        ),
        (
            "blue",
            lambda d: d["inquiry"].update(sought=["hobbies"]),
            [("inquiry.sought.0", "Input should be 'identity', 'location' or 'activities'")],
        ),
        (
            "black",
            lambda d: d["body"].update(estimated_age_min=50),
            [("body.estimated_age_max", "must not be below estimated_age_min")],
        ),
        (
            "black",
            lambda d: d["body"].pop("found_on"),
            [("body.found_on", "required for publication")],
        ),
        (
            "green",
            lambda d: d["warning"].pop("risk_summary"),
            [("warning.risk_summary", "required for publication")],
        ),
        (
            "orange",
            lambda d: d.update(purpose="sanctions"),
            [("purpose", "an orange notice's purpose must be one of: threat_alert, warning")],
        ),
        (
            "orange",
            lambda d: d["threat"].update(kind="weather"),
            [("threat.kind", "Input should be 'person', 'event', 'object' or 'process'")],
        ),
        (
            "purple",
            lambda d: d["modus_operandi"].pop("description"),
            [("modus_operandi.description", "required for publication")],
        ),
        (
            "silver",
            lambda d: d["assets"]["items"][0].update(currency="EUX"),
            [("assets.items.0.currency", "unknown ISO 4217 currency code 'EUX'")],
        ),
        (
            "silver",
            lambda d: d["assets"].update(items=[]),
            [("assets.items", "a silver notice needs at least one asset")],
        ),
        (
            "un",
            lambda d: d["sanctions"].pop("committee"),
            [("sanctions.committee", "required for publication")],
        ),
        (
            "un",
            lambda d: d.update(entity={"name": "Example Front"}),
            [("entity", "give either the person or the entity, not both")],
        ),
        (
            "un",
            lambda d: d.pop("person"),
            [("person", "a UN notice needs the sanctioned person or entity")],
        ),
        (
            "diffusion",
            lambda d: d["addressees"].append("SE"),
            [("addressees", "must not include the issuing bureau")],
        ),
        (
            "diffusion",
            lambda d: d.update(addressees=[]),
            [("addressees", "List should have at least 1 item after validation, not 0")],
        ),
    ],
)
def test_type_specific_refusals(
    kind: str, mutate: Callable[[dict[str, Any]], object], expected: list[tuple[str, str]]
) -> None:
    """Each notice type's own requirements are enforced with an exact message and path."""
    data = example(kind)
    mutate(data)
    assert errors_of(data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"{not json",
            "invalid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        ("[1, 2]", "a notice must be a JSON object"),
    ],
)
def test_not_a_notice_document(data: bytes | str, expected: str) -> None:
    """Bytes that are not a JSON object are refused as a whole (no field named)."""
    with pytest.raises(NoticeInvalid) as info:
        parse_notice(data)
    assert str(info.value) == expected
