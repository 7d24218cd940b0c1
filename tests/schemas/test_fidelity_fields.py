"""Issue 19, points 7 and 8: the fields a court and an identification need, and their checks."""

from typing import Any

import pytest

from broker.schemas import (
    NoticeInvalid,
    field_categories,
    header_fields,
    non_redactable,
    parse_notice,
    validate_notice,
)
from broker.schemas.blocks import AssetIdentifierKind, asset_identifier_error

from .conftest import example

REF = {
    "uri": "https://nbx.example/doc/1.pdf",
    "sha256": "ab" * 32,
    "media_type": "application/pdf",
}


def errors_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(NoticeInvalid) as info:
        validate_notice(data)
    return info.value.errors


def test_red_carries_what_a_court_needs() -> None:
    """Per charge: date, place, country, participation, attempt and translation language; per
    warrant: judgment in absence, finality and the copy by reference; the extradition countries."""
    data = example("red")
    charge = data["judicial"]["charges"][0]
    charge.update(
        committed_on="2021-05",
        committed_place="Torino",
        committed_country="IT",
        participation="co_perpetrator",
        attempted=False,
        translation="Frode aggravata",
        translation_language="it",
    )
    data["judicial"]["warrants"][0]["document"] = REF
    data["judicial"]["warrants"].append(
        {
            "kind": "judgment",
            "reference": "TO-2022/17",
            "issued_on": "2022-06-01",
            "issuing_authority": "Tribunale di Torino",
            "in_absentia": True,
            "final": False,
        }
    )
    data["judicial"]["extradition_countries"] = ["CH", "FR"]
    notice = parse_notice(data)
    j = notice.judicial  # type: ignore[union-attr]
    assert j is not None
    assert j.charges[0].participation == "co_perpetrator"
    assert j.charges[0].translation_language == "it"
    assert (j.warrants[1].in_absentia, j.warrants[1].final) == (True, False)
    assert j.warrants[0].document is not None
    assert j.warrants[0].document.sha256 == "ab" * 32
    assert j.extradition_countries == ["CH", "FR"]
    assert field_categories("red")["judicial.extradition_countries"] == "judicial"


def test_court_fields_are_checked() -> None:
    """Unknown participation, unknown translation language and a copy without its hash fail."""
    data = example("red")
    data["judicial"]["charges"][0].update(participation="helper", translation_language="xx")
    data["judicial"]["warrants"][0]["document"] = {"uri": REF["uri"], "media_type": "text/plain"}
    assert errors_of(data) == [
        (
            "judicial.warrants.0.document.sha256",
            "Field required",
        ),
        (
            "judicial.charges.0.participation",
            "Input should be 'principal', 'co_perpetrator', 'accomplice', 'instigator', "
            "'organiser' or 'other'",
        ),
        ("judicial.charges.0.translation_language", "unknown ISO 639-1 language code 'xx'"),
    ]


@pytest.mark.parametrize("kind", ["black", "yellow"])
def test_identification_fields_of_black_and_yellow(kind: str) -> None:
    """Clothing and personal effects are physical descriptions; dental records and DVI forms
    are biometric references (by hash), each its own unit."""
    block = "body" if kind == "black" else "missing"
    data = example(kind)
    data[block].update(
        clothing="Red anorak, blue jeans",
        personal_effects="Silver bracelet engraved 'L'",
        dental_records=[{**REF, "media_type": "image/png"}],
        dvi_forms=[REF],
    )
    parse_notice(data)
    categories = field_categories(kind)
    assert categories[f"{block}.clothing"] == "physical"
    assert categories[f"{block}.personal_effects"] == "physical"
    assert categories[f"{block}.dental_records"] == "biometric"
    assert categories[f"{block}.dvi_forms"] == "biometric"


@pytest.mark.parametrize(
    ("kind", "value", "error"),
    [
        (AssetIdentifierKind.IBAN, "GB82WEST12345698765432", None),
        (AssetIdentifierKind.IBAN, "GB82WEST12345698765431", "the IBAN's check digits are wrong"),
        (
            AssetIdentifierKind.IBAN,
            "GB82 WEST 1234 5698 7654 32",
            "an IBAN is 2 letters, 2 check digits and 11 to 30 letters or digits, no spaces",
        ),
        (AssetIdentifierKind.VIN, "1M8GDM9AXKP042788", None),
        (
            AssetIdentifierKind.VIN,
            "1M8GDM9AXKP04278O",
            "a VIN is 17 letters or digits, without I, O or Q",
        ),
        (AssetIdentifierKind.IMO, "9074729", None),
        (AssetIdentifierKind.IMO, "9074728", "the IMO number's check digit is wrong"),
        (
            AssetIdentifierKind.IMO,
            "IMO 9074729",
            "an IMO number is 7 digits (without the 'IMO' prefix)",
        ),
        (AssetIdentifierKind.WALLET_ADDRESS, "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", None),
        (
            AssetIdentifierKind.WALLET_ADDRESS,
            "0x12 34",
            "a wallet address is 20 to 128 letters, digits or ':_-'",
        ),
        (AssetIdentifierKind.COMPANY_NUMBER, "B 123456", None),
        (AssetIdentifierKind.LAND_REGISTRY, "Marbella 12/345", None),
    ],
)
def test_asset_identifier_formats(kind: AssetIdentifierKind, value: str, error: str | None) -> None:
    """IBAN and IMO check digits, the VIN alphabet and a wallet address's shape are verified;
    registry numbers are free short text."""
    assert asset_identifier_error(kind, value) == error


def test_silver_asset_identifiers_and_requested_action() -> None:
    """A bad identifier is reported at its path; the requested action is a header field."""
    data = example("silver")
    data["assets"]["items"][0]["identifiers"] = [
        {"kind": "land_registry", "value": "Marbella 12/345"},
        {"kind": "iban", "value": "ES9121000418450200051332"},
    ]
    assert parse_notice(data).assets.items[0].identifiers[1].kind == "iban"  # type: ignore[union-attr]
    data["assets"]["items"][0]["identifiers"][1]["value"] = "ES9121000418450200051331"
    assert errors_of(data) == [
        ("assets.items.0.identifiers.1.value", "the IBAN's check digits are wrong")
    ]
    assert "requested_action" in header_fields("silver")
    data = example("silver")
    data["requested_action"] = ["monitor_discreetly"]
    assert non_redactable(parse_notice(data))["requested_action"] == ["monitor_discreetly"]


def test_orange_threat_level_and_validity_are_never_withheld() -> None:
    """threat_level and valid_until are header fields of the orange notice; the old
    threat.valid_until is gone."""
    assert {"threat_level", "valid_until"} <= set(header_fields("orange"))
    assert not any(
        p.startswith(("threat_level", "valid_until")) for p in field_categories("orange")
    )
    header = non_redactable(parse_notice(example("orange")))
    assert header["threat_level"] == "severe"
    assert header["valid_until"] == "2025-06-30"
    data = example("orange")
    data["threat"]["valid_until"] = "2025-06-30"
    assert errors_of(data) == [("threat.valid_until", "Extra inputs are not permitted")]
