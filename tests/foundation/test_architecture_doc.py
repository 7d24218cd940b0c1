"""The repository stands on its own: code and docs cite docs/architecture.md, not the design
brief that is not in the repository, and every section they cite exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
#: the design brief's file name, spelled so that this file does not cite it
BRIEF = "DESIGN" + ".md"
CITATION = re.compile(r"docs/architecture\.md\s+section\s+(\d+)")
SUFFIXES = {".py", ".md", ".sh", ".toml", ".yaml", ".yml", ".cfg", ""}


def _files() -> list[Path]:
    roots = [ROOT / "broker", ROOT / "tests", ROOT / "deploy", ROOT / "docs"]
    found = [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    for root in roots:
        found += [
            p
            for p in root.rglob("*")
            if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts
        ]
    return sorted(found)


def _sections() -> set[int]:
    return {int(n) for n in re.findall(r"^## (\d+)\. ", ARCHITECTURE.read_text(), re.MULTILINE)}


def test_the_architecture_document_has_its_sections() -> None:
    """Data flow, module map, properties, wire format and topics are sections 1 to 5."""
    text = ARCHITECTURE.read_text()
    assert _sections() == {1, 2, 3, 4, 5}
    for heading in ("Data flow", "Module map", "Security properties", "Wire format", "Topics"):
        assert re.search(rf"^## \d+\. {heading}$", text, re.MULTILINE), heading
    for prop in ("P1", "P2", "P3", "P4", "P5", "P6"):
        assert f"**{prop} " in text, prop


def test_nothing_cites_the_design_brief() -> None:
    """No file of the repository points at the design brief, which is not in it."""
    citing = [
        str(p.relative_to(ROOT))
        for p in _files()
        if BRIEF in p.read_text(encoding="utf-8", errors="replace")
    ]
    assert not citing, citing


def test_every_cited_architecture_section_exists() -> None:
    """Each "docs/architecture.md section N" names a section of the document."""
    sections = _sections()
    cited: list[tuple[str, int]] = []
    for path in _files():
        for number in CITATION.findall(path.read_text(encoding="utf-8", errors="replace")):
            cited.append((str(path.relative_to(ROOT)), int(number)))
    assert len(cited) >= 5  # the code does point here
    wrong = [(p, n) for p, n in cited if n not in sections]
    assert not wrong, wrong


def test_every_module_folder_of_broker_is_in_the_module_map() -> None:
    """The module map names every package folder of ``broker/`` and every file it names exists."""
    text = ARCHITECTURE.read_text()
    folders = sorted(
        p.name for p in (ROOT / "broker").iterdir() if p.is_dir() and (p / "__init__.py").exists()
    )
    missing = [f for f in folders if f"`broker/{f}/`" not in text]
    assert not missing, missing
    named = re.findall(r"`(broker/[\w/]+\.(?:py|md))`", text)
    assert named
    absent = [n for n in named if not (ROOT / n).exists()]
    assert not absent, absent


def test_the_layer_table_of_the_document_is_the_one_the_layer_test_checks() -> None:
    """The module map's layer table lists the same packages on the same layers, bottom-up, as
    ``LAYERS`` in tests/foundation/test_layers.py."""
    from tests.foundation.test_layers import LAYERS

    rows = re.findall(r"^\| (\d+) \| (.+) \|$", ARCHITECTURE.read_text(), re.MULTILINE)
    assert [int(n) for n, _ in rows] == list(range(len(rows)))
    documented = tuple(
        tuple(
            re.sub(r"^broker/(\w+)(?:/|\.py)$", r"\1", path)
            for path in re.findall(r"`(broker/[\w/.]+)`", cells)
        )
        for _, cells in rows
    )
    assert documented == LAYERS
