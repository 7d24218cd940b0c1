"""The security documents name the tests that show each promise: every named test exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "threat-model.md", *sorted((ROOT / "docs" / "security").glob("*.md"))]
#: `path/to/test_x.py::test_name` or, after one, `::test_other` (same file); `test_p2_*` globs
REFERENCE = re.compile(r"`((?:tests/)?[\w/]+\.py)?::(test_[\w*]+)")


def _references(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    current = ""
    for path, name in REFERENCE.findall(text):
        current = path or current
        out.append((current, name))
    return out


def test_every_test_named_in_the_security_docs_exists() -> None:
    """Each ``file::test`` a security document cites is a test function in that file (paths
    relative to the repository or to ``tests/``), so the docs cannot point at a test that was
    renamed or removed."""
    missing: list[str] = []
    checked = 0
    for doc in DOCS:
        for path, name in _references(doc.read_text()):
            file = ROOT / path if path.startswith("tests/") else ROOT / "tests" / path
            source = file.read_text() if file.exists() else ""
            pattern = re.escape(name).replace(r"\*", r"\w*")
            if not re.search(rf"^(async )?def {pattern}\(", source, flags=re.MULTILINE):
                missing.append(f"{doc.name}: {path}::{name}")
            checked += 1
    assert checked > 40
    assert not missing, missing
