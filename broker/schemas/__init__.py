"""Notice schemas: pydantic models of every notice type and lifecycle message, data-category tags,
disclosure units, publication criteria, JSON Schema export and INTERPOL public-JSON import.

Reading order: :mod:`.categories` (tags), :mod:`.common` (codes, header types), :mod:`.person`,
:mod:`.judicial`, :mod:`.blocks`, :mod:`.notices`, :mod:`.criteria`, :mod:`.validation`,
:mod:`.units`, :mod:`.age`, :mod:`.lifecycle`, :mod:`.export`, :mod:`.interpol`.
"""

from __future__ import annotations

from broker.schemas.age import is_minor
from broker.schemas.categories import CATEGORY_KEY, HEADER_KEY, DataCategory
from broker.schemas.common import (
    Handling,
    HandlingCode,
    NoticeType,
    Purpose,
    SourceReliability,
    SubjectCategory,
)
from broker.schemas.criteria import publication_errors
from broker.schemas.lifecycle import (
    MAX_RECEIPTS_PER_MESSAGE,
    Cancel,
    ErasureOrder,
    MessageKind,
    Receipt,
    ReceiptBatch,
    Response,
    Suspend,
    UpdateInfo,
)
from broker.schemas.notices import (
    NOTICE_MODELS,
    BlackNotice,
    BlueNotice,
    Diffusion,
    GreenNotice,
    Notice,
    NoticeBase,
    OrangeNotice,
    PurpleNotice,
    RedNotice,
    SilverNotice,
    UnNotice,
    YellowNotice,
)
from broker.schemas.units import (
    JSON,
    DisclosureUnit,
    assemble_view,
    disclosure_units,
    field_categories,
    header_fields,
    non_redactable,
    validate_view,
)
from broker.schemas.validation import NoticeInvalid, parse_notice, validate_notice

__all__ = [
    "CATEGORY_KEY",
    "HEADER_KEY",
    "JSON",
    "MAX_RECEIPTS_PER_MESSAGE",
    "NOTICE_MODELS",
    "BlackNotice",
    "BlueNotice",
    "Cancel",
    "DataCategory",
    "Diffusion",
    "DisclosureUnit",
    "ErasureOrder",
    "GreenNotice",
    "Handling",
    "HandlingCode",
    "MessageKind",
    "Notice",
    "NoticeBase",
    "NoticeInvalid",
    "NoticeType",
    "OrangeNotice",
    "PurpleNotice",
    "Purpose",
    "Receipt",
    "ReceiptBatch",
    "RedNotice",
    "Response",
    "SilverNotice",
    "SourceReliability",
    "SubjectCategory",
    "Suspend",
    "UnNotice",
    "UpdateInfo",
    "YellowNotice",
    "assemble_view",
    "disclosure_units",
    "field_categories",
    "header_fields",
    "is_minor",
    "non_redactable",
    "parse_notice",
    "publication_errors",
    "validate_notice",
    "validate_view",
]
