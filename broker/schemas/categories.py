"""Data categories: the tag every disclosable field carries, and the helpers that attach it.

A field's category is stored in its JSON Schema as ``x-nbx-category`` (and header fields, which
every recipient always receives, as ``x-nbx-header: true``). :mod:`broker.schemas.units` reads the
tags back from the pydantic fields, so the published JSON Schema and the redaction code cannot
disagree.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, JsonValue
from pydantic.fields import FieldInfo

#: JSON Schema keyword carrying a field's :class:`DataCategory`.
CATEGORY_KEY = "x-nbx-category"
#: JSON Schema keyword marking a notice-root field every recipient always receives.
HEADER_KEY = "x-nbx-header"


class DataCategory(StrEnum):
    """What kind of data a disclosable field holds; recipients' policies decide per category.

    ``operational`` is a redactable case detail that is not personal data (threat description,
    modus operandi, assets). Whether the subject is a minor is a property of the subject, see
    :func:`broker.schemas.is_minor`, not a field category.
    """

    IDENTITY = "identity"
    PHYSICAL = "physical"
    BIOMETRIC = "biometric"
    JUDICIAL = "judicial"
    LOCATION = "location"
    CONTACT = "contact"
    ETHNIC_ORIGIN = "special.ethnic_origin"
    RELIGION = "special.religion"
    POLITICAL_OPINION = "special.political_opinion"
    HEALTH = "special.health"
    SEXUAL_LIFE = "special.sexual_life"
    OPERATIONAL = "operational"


def tagged(category: DataCategory, default: Any = None, **kwargs: Any) -> Any:
    """A pydantic ``Field`` for a disclosable field of ``category`` (default ``None``).

    Pass ``default_factory=list`` for list fields instead of a default.
    """
    extra: dict[str, JsonValue] = {CATEGORY_KEY: category.value}
    if "default_factory" in kwargs:
        return Field(json_schema_extra=extra, **kwargs)
    return Field(default, json_schema_extra=extra, **kwargs)


def header(default: Any = ..., **kwargs: Any) -> Any:
    """A pydantic ``Field`` for a notice-root field that every recipient always receives."""
    return Field(default, json_schema_extra={HEADER_KEY: True}, **kwargs)


def category_of(field: FieldInfo) -> DataCategory | None:
    """The category tag of ``field``, or ``None`` when it is untagged."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get(CATEGORY_KEY), str):
        return DataCategory(str(extra[CATEGORY_KEY]))
    return None


def is_header(field: FieldInfo) -> bool:
    """Whether ``field`` is marked as an always-disclosed header field."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get(HEADER_KEY) is True
