"""docs/notice-types.md (for bureau officers) says what the code enforces: its tables of roles
and purposes per notice type and per diffusion kind are the ones the publication criteria use,
and every type, role, threat level and asset action is named."""

from __future__ import annotations

import re
from pathlib import Path

from broker.schemas.blocks import AssetAction, DiffusionKind, ThreatLevel
from broker.schemas.common import PROTECTED_ROLES, NoticeType, Purpose, SubjectCategory
from broker.schemas.criteria import (
    ALLOWED_PURPOSES,
    ALLOWED_SUBJECTS,
    DIFFUSION_PURPOSES,
    DIFFUSION_SUBJECTS,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "notice-types.md").read_text()


def table(heading: str) -> list[list[str]]:
    """The rows (cells) of the first table after the line ``heading``."""
    lines = DOC.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows: list[list[str]] = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def names(cell: str, universe: frozenset[str]) -> frozenset[str]:
    """``suspect, accused`` -> the set; ``any`` -> everything; ``any but X`` -> all but X."""
    if cell == "any":
        return universe
    if cell.startswith("any but "):
        return universe - {cell.removeprefix("any but ")}
    return frozenset(part.strip() for part in cell.split(","))


ROLES = frozenset(SubjectCategory)
PURPOSES = frozenset(Purpose)


def test_the_glance_table_has_the_roles_and_purposes_the_criteria_allow() -> None:
    rows = {row[0]: row for row in table("## The notices at a glance")}
    assert set(rows) == set(NoticeType)
    for kind in NoticeType:
        if kind is NoticeType.DIFFUSION:
            assert rows[kind][2:4] == ["per kind", "per kind"]
            continue
        assert names(rows[kind][2], ROLES) == ALLOWED_SUBJECTS[kind], kind
        assert names(rows[kind][3], PURPOSES) == ALLOWED_PURPOSES[kind], kind


def test_the_diffusion_table_has_the_roles_and_purposes_the_criteria_allow() -> None:
    rows = {row[0]: row for row in table("## Diffusions")}
    assert set(rows) == set(DiffusionKind)
    for kind in DiffusionKind:
        assert names(rows[kind][2], ROLES) == DIFFUSION_SUBJECTS[kind], kind
        assert names(rows[kind][3], PURPOSES) == DIFFUSION_PURPOSES[kind], kind


def test_every_role_is_explained_and_the_protected_ones_are_named() -> None:
    rows = {row[0] for row in table("## The person's role")}
    assert rows == set(SubjectCategory)
    children = DOC.split("**Children.**", 1)[1].split("\n\n", 1)[0]
    listed = re.search(r"protected \(([^)]*)\)", children)
    assert listed is not None
    words = {w.strip().replace(" ", "_") for w in listed.group(1).replace(" and ", ", ").split(",")}
    assert words == set(PROTECTED_ROLES)


def test_every_type_has_a_section_and_every_level_and_action_is_named() -> None:
    sections = re.findall(r"^### (.+)$", DOC, flags=re.MULTILINE)
    assert len(sections) == len(NoticeType) - 1  # diffusions have their own chapter
    assert "## Diffusions" in DOC
    for level in ThreatLevel:
        assert level.value in DOC.split("### Orange notice", 1)[1].split("###", 1)[0]
    for action in AssetAction:
        assert action.value in DOC.split("### Silver notice", 1)[1].split("###", 1)[0]
