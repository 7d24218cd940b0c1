"""Shared fixtures: the example notices shipped under ``examples/notices/``."""

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "notices"
FIXTURES = Path(__file__).parent / "fixtures"


def example(kind: str) -> dict[str, Any]:
    """A fresh copy of the example notice of ``kind`` as a dict."""
    notice: dict[str, Any] = json.loads((EXAMPLES / f"{kind}.json").read_text(encoding="utf-8"))
    return notice


@pytest.fixture
def red() -> dict[str, Any]:
    return example("red")
