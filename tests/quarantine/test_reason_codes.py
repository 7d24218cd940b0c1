"""The reason codes are explained in one table (docs/reason-codes.md): one row per
:class:`~broker.vocab.Reason`, whose meaning is the sentence ``nbx quarantine`` prints."""

from __future__ import annotations

from pathlib import Path

from broker.vocab import NOT_KEPT, REASON_HELP, Reason

DOC = Path(__file__).resolve().parents[2] / "docs" / "reason-codes.md"


def table() -> dict[str, list[str]]:
    """The table's rows by code: ``[raised by, meaning, what to do]``."""
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_reason_has_a_help_text_and_one_row_that_repeats_it() -> None:
    """REASON_HELP covers every Reason with one plain sentence; the doc's table has exactly one
    row per code, in which the meaning is that sentence and the other cells are filled."""
    assert set(REASON_HELP) == set(Reason)
    assert all(text.endswith(".") and "\n" not in text for text in REASON_HELP.values())
    rows = table()
    assert sorted(rows) == sorted(r.value for r in Reason)
    for reason in Reason:
        where, meaning, todo = rows[reason.value]
        assert meaning == REASON_HELP[reason], reason
        assert where, reason
        assert todo, reason


def test_the_reasons_quarantined_without_their_value_are_named_in_the_doc() -> None:
    """The doc says which codes keep only headers; those are decisions, never failures."""
    text = DOC.read_text()
    decisions = {Reason.DECLINED_BY_POLICY, Reason.NOT_IN_ADDRESSEES, Reason.REVIEW_REQUIRED}
    assert decisions == NOT_KEPT
    for reason in NOT_KEPT:
        assert f"`{reason.value}`" in text.split("| code |")[0]
