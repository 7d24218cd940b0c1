"""What a recipient does with a notice's evaluation and handling codes (docs/handling.md).

Every notice's header carries the 4x4 evaluation (source reliability A B C X, information accuracy
1 2 3 4) and a handling code H0-H3 (the sender's override, when it set one, is what the header
holds). They are always disclosed and carry no personal data. This module:

* :func:`code_lines`: the lines every view prints (``nbx inbox show``, ``nbx review show``,
  ``nbx inbox export``): the codes with their meaning, the obligation a handling code puts on
  the recipient (H1: court use needs the provider's permission; H2: no onward dissemination
  without it; H3: the conditions), a caution for an unreliable or unassessed source or for
  information that cannot be corroborated;
* :func:`export_notice`: a notice leaving NBX for a national system, the one onward
  dissemination the software sees: refused for an H2 notice without the reference of the
  provider's permission, which is recorded in the ``disclosure`` audit entry of the export.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.errors import NbxError
from broker.schemas import HandlingCode, SourceReliability
from broker.sinks.base import Access, AuditEvent, NoticeRecord, Sink, header_codes
from broker.vocab import AuditAction, NoticeState

__all__ = [
    "ACCURACY",
    "EXPORTED_OUTCOME",
    "EXPORT_FORMAT",
    "EXPORT_KIND",
    "HANDLING",
    "PERMISSION_PREFIX",
    "RELIABILITY",
    "ExportError",
    "Exported",
    "code_lines",
    "evaluation",
    "export_notice",
]

#: what each handling code asks of the recipient
HANDLING: Mapping[str, str] = {
    HandlingCode.H0: "no restriction beyond law-enforcement use",
    HandlingCode.H1: "not to be used in judicial proceedings without the provider's permission",
    HandlingCode.H2: "not to be disseminated without the provider's permission",
    HandlingCode.H3: "other restrictions, stated by the provider",
}
#: the 4x4 evaluation: the reliability of the source (Europol Regulation 2016/794, Art. 29(1))
RELIABILITY: Mapping[str, str] = {
    SourceReliability.A: "source reliable (no doubt, or reliable in all instances)",
    SourceReliability.B: "source reliable in most instances",
    SourceReliability.C: "source unreliable in most instances",
    SourceReliability.X: "reliability of the source cannot be assessed",
}
#: the 4x4 evaluation: the accuracy of the information (Art. 29(2))
ACCURACY: Mapping[int, str] = {
    1: "accuracy not in doubt",
    2: "known personally to the source, not to the official passing it on",
    3: "not known personally to the source, corroborated by information already recorded",
    4: "not known personally to the source, cannot be corroborated",
}
#: the ``kind`` of an export's ``disclosure`` audit entry
EXPORT_KIND = "export"
#: the ``outcome`` of an export's ``disclosure`` audit entry
EXPORTED_OUTCOME = "exported"
#: an export's ``reason`` in the audit entry: this prefix and the permission's reference
PERMISSION_PREFIX = "provider-permission:"
#: the ``format`` of an exported file
EXPORT_FORMAT = "nbx-export/1"
#: a permission reference: a case, letter or message reference, never a name
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")


class ExportError(NbxError):
    """A notice that may not leave NBX as asked (one line saying why)."""


def evaluation(reliability: str | None, accuracy: int | None) -> str:
    """The 4x4 evaluation written as one code (``B2``), ``-`` when unknown (purged)."""
    if reliability is None or accuracy is None:
        return "-"
    return f"{reliability}{accuracy}"


def code_lines(view: Mapping[str, Any] | None, sender: str) -> list[str]:
    """The lines a view prints about its codes: the handling code with what it asks of the
    recipient (and H3's conditions), the evaluation with its meaning, and a caution where the
    source is unreliable or unassessed or the information cannot be corroborated. Empty for a
    purged notice."""
    handling, reliability, accuracy = header_codes(view)
    if view is None or handling is None:
        return []
    lines = [f"handling: {handling}: {HANDLING.get(handling, 'unknown code')} ({sender})"]
    conditions = (view.get("handling") or {}).get("conditions")
    if handling == HandlingCode.H3 and conditions:
        lines.append(f"conditions: {conditions}")
    if reliability is not None and accuracy is not None:
        lines.append(
            f"evaluation: {evaluation(reliability, accuracy)}: "
            f"{RELIABILITY.get(reliability, 'unknown')}; {ACCURACY.get(accuracy, 'unknown')}"
        )
        if reliability in (SourceReliability.C, SourceReliability.X) or accuracy == 4:
            lines.append("caution: corroborate before acting on this information")
    return lines


@dataclass(frozen=True)
class Exported:
    """A notice exported: the document written, and the lines to show the operator."""

    document: dict[str, Any]
    lines: list[str]


def _check_reference(permission: str | None) -> str | None:
    if permission is None:
        return None
    if not _REFERENCE.fullmatch(permission):
        msg = (
            f"--provider-permission {permission!r}: expected a reference (letters, digits and "
            ". _ : / -, at most 100), never a name"
        )
        raise ExportError(msg)
    return permission


def export_notice(
    sink: Sink,
    notice_id: str,
    access: Access,
    *,
    permission: str | None = None,
    now: datetime | None = None,
) -> Exported:
    """Read ``notice_id`` for ``access`` (a ``consultation`` entry) and, unless a rule refuses
    it, record its export as a ``disclosure`` entry (kind ``export``, operator and purpose,
    reason ``provider-permission:REF`` when ``permission`` is given) and return the document.

    Refused (:class:`ExportError`): an unknown notice, a notice holding no data any more, one
    that is not actionable (pending review, refused, blocked, suspended, cancelled), an H2 notice
    without ``permission`` (the reference of the provider's permission), a malformed reference.
    """
    reference = _check_reference(permission)
    record = sink.notice(notice_id, access)
    if record is None:
        msg = f"{notice_id}: no such notice in the inbox"
        raise ExportError(msg)
    view = record["view"]
    state = record["state"]
    if view is None:
        msg = f"{notice_id}: {state}, it holds no data to export"
        raise ExportError(msg)
    if state != NoticeState.ACTIONABLE:
        reason = f" ({record['state_reason']})" if record["state_reason"] else ""
        msg = f"{notice_id}: {state}{reason}, not actionable: it may not be exported"
        raise ExportError(msg)
    handling = header_codes(view)[0]
    sender = record["sender"]
    if handling == HandlingCode.H2 and reference is None:
        msg = (
            f"{notice_id}: handling H2: not to be disseminated without the provider's "
            f"permission; ask {sender} and give its reference with --provider-permission REF"
        )
        raise ExportError(msg)
    sink.record(
        AuditEvent(
            AuditAction.DISCLOSURE,
            notice_id=record["notice_id"],
            msg_id=record["msg_id"],
            sender=sender,
            notice_type=record["notice_type"],
            kind=EXPORT_KIND,
            operator=access.operator,
            purpose=access.purpose,
            outcome=EXPORTED_OUTCOME,
            reason=None if reference is None else PERMISSION_PREFIX + reference,
        )
    )
    lines = code_lines(view, sender)
    if handling == HandlingCode.H2 and reference is not None:
        lines.append(f"provider's permission: {reference} (recorded in the audit log)")
    return Exported(_document(record, reference, now or datetime.now(UTC)), lines)


def _document(record: NoticeRecord, reference: str | None, now: datetime) -> dict[str, Any]:
    """The exported file: the disclosed notice, what was withheld (paths and labels), where it
    came from, and the permission it left under."""
    return {
        "format": EXPORT_FORMAT,
        "notice": record["view"],
        "withheld": [{"path": p, "rule": r} for p, r in record["withheld"] or []],
        "sender": record["sender"],
        "msg_id": record["msg_id"],
        "version": record["version"],
        "policy": record["policy"],
        "provider_permission": reference,
        "exported_at": now.astimezone(UTC).isoformat(timespec="seconds"),
    }
