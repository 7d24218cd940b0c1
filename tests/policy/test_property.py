"""Property: a withheld unit never appears in the recipient's package.

Notices are generated from the example notices (fields dropped, handling, sender and date of birth
varied); policies are generated from random rules over every matcher. Each decision is sealed with
the real envelope and the package plaintext for the recipient is inspected.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.envelope import seal
from broker.keys import BureauKeys
from broker.policy import (
    BUILTIN_RULES,
    DEFAULT_DENY_MINOR,
    MINOR_PROTECTED,
    PolicyInvalid,
    PolicySet,
    SenderRestrictions,
    decide,
    parse_policy,
)
from broker.policy.decision import WITHHELD_BY_POLICY
from broker.policy.policy import Policy
from broker.schemas import (
    DataCategory,
    NoticeInvalid,
    NoticeType,
    SubjectCategory,
    disclosure_units,
    is_minor,
    non_redactable,
    parse_notice,
)
from broker.schemas.age import minor_test, related_tests
from broker.schemas.units import free_text_paths

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "notices"
SEEDS = {p.stem: json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))}
SIGNER = BureauKeys.generate("IT")
TODAY = date(2025, 6, 1)
PATTERNS = [
    "person.**",
    "person.*",
    "person.biometrics.*",
    "person.special.*",
    "person.physical.*",
    "person.contact.*",
    "person.family_name",
    "person.date_of_birth",
    "person.*_name",
    "judicial.*",
    "judicial.charges",
    "missing.*",
    "body.*",
    "person.*.*",
    "related_persons",
]
CATEGORIES = [c.value for c in DataCategory] + ["special.*"]
SUBJECTS = [s.value for s in SubjectCategory] + ["minor"]


def _drop(data: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


@st.composite
def notices(draw: st.DrawFn) -> Any:
    """A publishable notice derived from an example, with fields dropped and header varied."""
    seed = copy.deepcopy(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    base = parse_notice(seed)
    variants = [
        ("handling", {"code": draw(st.sampled_from(["H0", "H1", "H2"]))}),
        ("issuing_bureau", draw(st.sampled_from(["IT", "ES", "NO", "XA"]))),
    ]
    if isinstance(seed.get("person"), dict) and "date_of_birth" in seed["person"]:
        dob = draw(st.sampled_from(["1970-01-02", "2012", "2010-06"]))
        variants.append(("person", {**seed["person"], "date_of_birth": dob}))
    variants.append(("subject_category", draw(st.sampled_from(SUBJECTS[:-1]))))
    related = {
        "role": draw(st.sampled_from(SUBJECTS[:-1])),
        "family_name": "RELATED PERSON",
        "date_of_birth": draw(st.sampled_from(["1970-01-02", "2012"])),
    }
    variants.append(("related_persons", draw(st.sampled_from([[], [related]]))))
    for key, value in variants:  # keep each variation only if the notice stays publishable
        trial = {**seed, key: value}
        try:
            base = parse_notice(trial)
        except NoticeInvalid:
            continue
        seed = trial
    for unit in disclosure_units(base):
        if draw(st.booleans()) and draw(st.booleans()):
            _drop(seed, unit.path)
    try:
        return parse_notice(seed)
    except NoticeInvalid:
        return base


@st.composite
def rules(draw: st.DrawFn, index: int) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f"r{index}",
        "action": draw(st.sampled_from(["disclose", "withhold"])),
        "reason": "generated",
    }
    vocab: dict[str, list[Any]] = {
        "notice_type": [t.value for t in NoticeType],
        "category": CATEGORIES,
        "path": PATTERNS,
        "subject": SUBJECTS,
        "handling": ["H0", "H1", "H2", "H3"],
        "sender": ["IT", "ES", "NO", "XA"],
        "reliability": ["A", "B", "C", "X"],
        "accuracy": [1, 2, 3, 4],
    }
    for key in draw(st.lists(st.sampled_from(sorted(vocab)), max_size=3, unique=True)):
        rule[key] = draw(st.lists(st.sampled_from(vocab[key]), min_size=1, max_size=2, unique=True))
    return rule


def _toml(country: str, rule_list: list[dict[str, Any]]) -> str:
    lines = ['schema = "nbx-policy/1"', f'country = "{country}"']
    for rule in rule_list:
        lines.append("[[rule]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in rule.items()]
    return "\n".join(lines) + "\n"


@st.composite
def policies(draw: st.DrawFn, country: str) -> Policy:
    """A valid policy: generated rules, minus those the checker rejects (dead or conflicting)."""
    count = draw(st.integers(0, 8))
    rule_list = [draw(rules(i)) for i in range(count)]
    while True:
        try:
            return parse_policy(_toml(country, rule_list).encode(), source=f"{country}.toml")
        except PolicyInvalid as exc:
            bad = {p.where for p in exc.problems}
            kept = [r for r in rule_list if f"rule {r['id']!r}" not in bad]
            if len(kept) == len(rule_list):  # a problem the generator should never cause
                raise
            rule_list = kept


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    notice=notices(),
    fr=policies("FR"),
    default=policies("default"),
    exclude=st.sampled_from([(), ("FR",), ("DE",)]),
    handling=st.sampled_from([None, "H2"]),
)
def test_withheld_units_never_reach_the_recipient(
    notice: Any, fr: Policy, default: Policy, exclude: tuple[str, ...], handling: str | None
) -> None:
    """For generated notices and policies, a withheld unit's path and value are absent from the
    recipient's decrypted package, disclosed units are exactly the decision's, and every protected
    unit that is disclosed was disclosed by a rule that names it."""
    policy_set = PolicySet([fr, default])
    restrictions = SenderRestrictions(exclude=frozenset(exclude), handling=handling)
    units = {u.path: u for u in disclosure_units(notice)}
    decisions = {
        cc: decide(notice, cc, policy_set, restrictions=restrictions, today=TODAY)
        for cc in ("FR", "DE")
    }
    grants = {cc: d.grant() for cc, d in decisions.items() if d.allowed}
    assert set(grants) == {"FR", "DE"} - set(exclude)
    sealed = seal(
        signer=SIGNER,
        kind="publish",
        notice_id=notice.notice_id,
        notice_type=str(notice.notice_type),
        header=non_redactable(notice),
        units={path: u.value for path, u in units.items()},
        grants=grants,
        handling=handling or str(notice.handling.code),
    )
    minor = is_minor(notice, TODAY)
    subject = minor_test(notice, TODAY)
    related = related_tests(notice, TODAY)
    free_text = free_text_paths(notice.notice_type)
    for cc, decision in decisions.items():
        policy = policy_set.for_recipient(cc)
        withheld = dict(decision.withheld)
        assert not (decision.disclosed & withheld.keys())
        if not decision.allowed:
            assert cc not in sealed.audience
            continue
        assert decision.disclosed | withheld.keys() == units.keys()
        text = sealed.plaintext_for(cc).decode()
        package = json.loads(text)
        sent_paths = [d[1] for d in package["disclosures"]]
        assert set(sent_paths) == decision.disclosed
        assert not set(sent_paths) & withheld.keys()
        manifest = dict(decision.grant().withheld)
        assert package["withheld"] == [[p, r] for p, r in sorted(manifest.items())]
        assert manifest.keys() == withheld.keys()
        # the manifest names the deciding rule, or says only that a policy withheld the field
        assert all(manifest[p] in (withheld[p], WITHHELD_BY_POLICY) for p in withheld)
        if "person.date_of_birth" in withheld and not any(t.minor for t in related):
            # the minor test is hidden: so is its outcome
            assert DEFAULT_DENY_MINOR not in manifest.values()
        visible = json.dumps([package["disclosures"], non_redactable(notice)], ensure_ascii=False)
        for path in withheld:
            value = json.dumps(units[path].value, ensure_ascii=False)
            if len(value) >= 8 and value not in visible:
                assert value not in text, path
        for rule_id in withheld.values():
            assert rule_id in BUILTIN_RULES or policy.rule(rule_id) is not None
        for path, rule_id in decision.disclosed_by:
            rule = policy.rule(rule_id)
            assert rule is not None
            category = units[path].category
            if category.startswith("special.") or category == DataCategory.BIOMETRIC:
                assert rule.names(path, category), (path, rule_id)
            if minor and category in MINOR_PROTECTED:
                assert rule.names_minor, (path, rule_id, DEFAULT_DENY_MINOR)
            if subject.protected and path in free_text:  # a protected minor's free text
                assert rule.names_minor, (path, rule_id, DEFAULT_DENY_MINOR)
