"""The committed JSON Schemas in schemas/ match the models, and carry the category tags."""

import json

from broker.schemas.export import is_generated, render_schemas

from .conftest import ROOT

SCHEMAS = ROOT / "schemas"


def test_committed_schemas_are_up_to_date() -> None:
    """Fails when a model changed without `nbx schema export` (or a stale file is left)."""
    expected = render_schemas()
    committed = {
        p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.iterdir() if is_generated(p.name)
    }
    assert sorted(committed) == sorted(expected), "run: nbx schema export"
    for name, text in expected.items():
        assert committed[name] == text, f"{name} is out of date; run: nbx schema export"


def test_schemas_expose_categories_and_header() -> None:
    """x-nbx-category and x-nbx-header appear in the exported schema."""
    red = json.loads(render_schemas()["notice.red.json"])
    assert red["properties"]["notice_id"]["x-nbx-header"] is True
    person = red["$defs"]["Person"]["properties"]
    assert person["family_name"]["x-nbx-category"] == "identity"
    assert red["$defs"]["Judicial"]["properties"]["charges"]["x-nbx-category"] == "judicial"
    assert red["additionalProperties"] is False
