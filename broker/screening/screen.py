"""``screen``: the flags of one disclosed view, each with the reason a reviewer reads.

A view is a notice dict as stored (withheld fields are simply absent). Nothing here raises on
what a view holds: a field that is missing, withheld or of an unexpected type gives no flag.
Reasons name the field, the category and the pattern that matched, never the subject's name nor
the matched text (a charge may name people).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from broker.ids import is_bureau_id
from broker.schemas.common import NoticeType
from broker.screening.offences import Category, OffenceList, OffencePattern, load_offences
from broker.screening.protected import ProtectedPersons, load_protected, secret_from_env
from broker.vocab import ScreeningFlag

__all__ = ["DEFAULT_REFUSAL_THRESHOLD", "OFFENCE_TEXT_FIELDS", "Flag", "Screener", "screen"]

#: above this share of refused messages a sender is flagged (``[screening] refusal_threshold``)
DEFAULT_REFUSAL_THRESHOLD = 0.2

_JUDICIAL: tuple[tuple[str, ...], ...] = (
    ("judicial", "charges", "*", "description"),
    ("judicial", "charges", "*", "translation"),
    ("judicial", "summary_of_facts"),
)
#: where each notice type holds charges and offence texts (``*``: every item of a list)
OFFENCE_TEXT_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    NoticeType.RED: _JUDICIAL,
    NoticeType.DIFFUSION: (*_JUDICIAL, ("details", "request")),
    NoticeType.BLUE: (("inquiry", "related_offence"), ("inquiry", "reason")),
    NoticeType.GREEN: (
        ("warning", "offence_types", "*"),
        ("warning", "criminal_history"),
        ("warning", "risk_summary"),
    ),
    NoticeType.SILVER: (("assets", "related_offence"),),
    NoticeType.PURPLE: (("modus_operandi", "offence_type"), ("modus_operandi", "description")),
    NoticeType.ORANGE: (("threat", "description"),),
    NoticeType.UN: (("sanctions", "narrative"),),
    NoticeType.YELLOW: (),
    NoticeType.BLACK: (),
}
#: for a notice type NBX does not know: every field above
_ALL_FIELDS = tuple(dict.fromkeys(p for paths in OFFENCE_TEXT_FIELDS.values() for p in paths))
#: charge natures the rules exclude from notices
_EXCLUDED_NATURES = ("private_dispute", "administrative")


@dataclass(frozen=True)
class Flag:
    """One screening flag: its code and a short sentence saying what matched. Advice for the
    person who reviews the message, never a decision."""

    code: ScreeningFlag
    reason: str

    def to_json(self) -> dict[str, str]:
        """``{"code", "reason"}``, as stored with a notice and printed by the CLI."""
        return {"code": self.code.value, "reason": self.reason}


def _texts(node: Any, path: tuple[str, ...], where: str) -> Iterator[tuple[str, str]]:
    """Each string at ``path`` under ``node`` with its location (``a.b[2].c``)."""
    if not path:
        if isinstance(node, str):
            yield where, node
        return
    step, rest = path[0], path[1:]
    if step == "*":
        if isinstance(node, list):
            for n, item in enumerate(node):
                yield from _texts(item, rest, f"{where}[{n}]")
    elif isinstance(node, Mapping) and step in node:
        yield from _texts(node[step], rest, f"{where}.{step}" if where else step)


def _offence_flags(view: Mapping[str, Any], notice_type: str, offences: OffenceList) -> list[Flag]:
    found: dict[str, tuple[Category, OffencePattern, str]] = {}
    for path in OFFENCE_TEXT_FIELDS.get(notice_type, _ALL_FIELDS):
        for where, text in _texts(view, path, ""):
            for category, pattern in offences.matches(text):
                found.setdefault(category.id, (category, pattern, where))
    flags = [
        Flag(
            category.flag,
            f"{where} matches the offence category {category.title!r} (pattern {pattern.text!r}).",
        )
        for category in offences.categories
        if category.id in found
        for _, pattern, where in [found[category.id]]
    ]
    judicial = view.get("judicial")
    charges = judicial.get("charges") if isinstance(judicial, Mapping) else None
    for n, charge in enumerate(charges if isinstance(charges, list) else []):
        nature = charge.get("nature") if isinstance(charge, Mapping) else None
        if nature in _EXCLUDED_NATURES:
            flags.append(
                Flag(
                    ScreeningFlag.EXCLUDED_OFFENCE,
                    f"judicial.charges[{n}].nature is {nature!r}: the rules exclude matters "
                    "that are not criminal.",
                )
            )
    return flags


def _str(node: Mapping[str, Any], key: str) -> str:
    value = node.get(key)
    return value if isinstance(value, str) else ""


def _protected_flag(view: Mapping[str, Any], protected: ProtectedPersons) -> Flag | None:
    person = view.get("person")
    if not isinstance(person, Mapping) or not protected.hashes:
        return None
    dob = _str(person, "date_of_birth")
    if protected.contains(_str(person, "family_name"), _str(person, "forenames"), dob):
        return Flag(
            ScreeningFlag.PROTECTED_PERSON,
            "The subject's name and date of birth are on this bureau's protected-persons list.",
        )
    aliases = person.get("aliases")
    for alias in aliases if isinstance(aliases, list) else []:
        if isinstance(alias, Mapping) and protected.contains(
            _str(alias, "family_name"), _str(alias, "forenames"), dob
        ):
            return Flag(
                ScreeningFlag.PROTECTED_PERSON,
                "An alias of the subject, with the subject's date of birth, is on this "
                "bureau's protected-persons list.",
            )
    return None


def _percent(share: float) -> str:
    return f"{share * 100:.1f}".removesuffix(".0") + "%"


def screen(
    view: Any,
    *,
    notice_type: str,
    sender: str,
    offences: OffenceList,
    protected: ProtectedPersons | None = None,
    supervised: bool = False,
    refusal_rate: float | None = None,
    refusal_threshold: float = DEFAULT_REFUSAL_THRESHOLD,
) -> list[Flag]:
    """The flags of a disclosed ``view`` of a ``notice_type`` notice from ``sender``.

    In order: one flag per offence category of ``offences`` matched by a charge or offence text
    (the first field and pattern that matched), one per charge whose nature the rules exclude,
    ``protected-person`` when the subject (or an alias, with the subject's date of birth) is on
    ``protected``, ``supervised-sender`` when the network supervises the sender before delivery
    (``supervised``), ``refusal-rate`` when ``refusal_rate`` (the share of the sender's recent
    messages that reviewers refused, 0 to 1) is above ``refusal_threshold``.

    Fields withheld from the view, or of an unexpected type, give fewer flags, never an error.
    """
    flags: list[Flag] = []
    who = f"The sender {sender}" if is_bureau_id(sender) else "The sender"
    if isinstance(view, Mapping):
        flags += _offence_flags(view, str(notice_type), offences)
        if protected is not None and (flag := _protected_flag(view, protected)) is not None:
            flags.append(flag)
    if supervised:
        flags.append(
            Flag(ScreeningFlag.SUPERVISED_SENDER, f"{who} is under heightened supervision.")
        )
    if (
        isinstance(refusal_rate, int | float)
        and not isinstance(refusal_rate, bool)
        and math.isfinite(refusal_rate)
        and refusal_rate > refusal_threshold
    ):
        flags.append(
            Flag(
                ScreeningFlag.REFUSAL_RATE,
                f"{who} had {_percent(min(refusal_rate, 1.0))} of its recent messages refused "
                f"(threshold {_percent(refusal_threshold)}).",
            )
        )
    return flags


class ScreeningSettings(Protocol):
    """What :meth:`Screener.from_settings` reads of a node's ``[screening]`` settings."""

    @property
    def offences(self) -> Path | None:
        """The offence list (``None``: the bundled one)."""
        ...

    @property
    def protected(self) -> Path | None:
        """The protected-persons file, if any."""
        ...

    @property
    def secret_env(self) -> str:
        """The environment variable holding the protected list's secret."""
        ...

    @property
    def refusal_threshold(self) -> float:
        """The refusal rate above which the sender is flagged."""
        ...


@dataclass(frozen=True)
class Screener:
    """A bureau's screening settings loaded once: its offence list, its protected-persons list
    and the refusal-rate threshold; :meth:`screen` flags one view with them."""

    offences: OffenceList
    protected: ProtectedPersons | None = None
    refusal_threshold: float = DEFAULT_REFUSAL_THRESHOLD

    @classmethod
    def load(
        cls,
        *,
        offences: Path | None = None,
        protected: Path | None = None,
        secret_env: str = "NBX_SCREENING_SECRET",  # noqa: S107 - the name of a variable
        refusal_threshold: float = DEFAULT_REFUSAL_THRESHOLD,
    ) -> Screener:
        """The lists named by a node's ``[screening]`` settings (``NodeConfig.screening``: pass
        its fields). Without a protected-persons file no secret is needed; with one, a missing
        or wrong secret is a :class:`~broker.errors.ConfigError`."""
        persons = None
        if protected is not None and protected.exists():
            persons = load_protected(protected, secret_from_env(secret_env), secret_name=secret_env)
        return cls(load_offences(offences), persons, refusal_threshold)

    @classmethod
    def from_settings(cls, settings: ScreeningSettings) -> Screener:
        """:meth:`load` with a node's ``[screening]`` settings (``NodeConfig.screening``)."""
        return cls.load(
            offences=settings.offences,
            protected=settings.protected,
            secret_env=settings.secret_env,
            refusal_threshold=settings.refusal_threshold,
        )

    def screen(
        self,
        view: Any,
        *,
        notice_type: str,
        sender: str,
        supervised: bool = False,
        refusal_rate: float | None = None,
    ) -> list[Flag]:
        """:func:`screen` with this bureau's lists and threshold."""
        return screen(
            view,
            notice_type=notice_type,
            sender=sender,
            offences=self.offences,
            protected=self.protected,
            supervised=supervised,
            refusal_rate=refusal_rate,
            refusal_threshold=self.refusal_threshold,
        )
