"""Lifecycle messages are strict and refer to a notice id."""

import pytest
from pydantic import ValidationError

from broker.schemas import Cancel, ErasureOrder, Receipt, Suspend, UpdateInfo

AT = "2025-05-01T10:00:00Z"
MSG = "0196a0b2-7c1e-7abc-8def-0123456789ab"


def test_valid_messages() -> None:
    """Each lifecycle message validates with its minimal fields."""
    assert Cancel(notice_id="IT-2025-0001", reason="arrested", withdraw=True).withdraw
    assert Suspend(notice_id="IT-2025-0001", reason="under review").until is None
    assert ErasureOrder(notice_id="IT-2025-0001", reason="court order").erase_by is None
    assert UpdateInfo(supersedes_version=1).supersedes_version == 1
    r = Receipt.model_validate(
        {
            "msg_id": MSG,
            "notice_id": "IT-2025-0001",
            "recipient": "FR",
            "status": "delivered",
            "at": AT,
        }
    )
    assert r.reason is None


def test_rejected_receipt_needs_reason() -> None:
    """A rejection without a reason is refused."""
    with pytest.raises(ValidationError, match="reason: required when the status is rejected"):
        Receipt.model_validate(
            {
                "msg_id": MSG,
                "notice_id": "IT-2025-0001",
                "recipient": "FR",
                "status": "rejected",
                "at": AT,
            }
        )


@pytest.mark.parametrize(
    "data",
    [
        {"notice_id": "IT-2025-0001", "reason": "x", "extra": 1},
        {"notice_id": "bad id!", "reason": "x"},
        {"reason": "x"},
    ],
)
def test_cancel_is_strict(data: dict[str, object]) -> None:
    """Unknown keys, malformed or missing notice ids are refused."""
    with pytest.raises(ValidationError):
        Cancel.model_validate(data)


def test_update_supersedes_a_real_version() -> None:
    """Version 0 cannot be superseded."""
    with pytest.raises(ValidationError):
        UpdateInfo(supersedes_version=0)
