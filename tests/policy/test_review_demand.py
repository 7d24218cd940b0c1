"""A bureau's own inbound policy may hold notices as not actionable until a reviewer approved
them (`[[inbound.require_review]]`), beyond the network's rules: matching, and refused files."""

from __future__ import annotations

import pytest

from broker.errors import PolicyError
from broker.policy import PolicyInvalid, PolicySet, parse_policy, review_demand

FR = b"""schema = "nbx-policy/1"
country = "FR"

[[inbound.require_review]]
id = "fr-review-non-treaty"
reason = "no extradition treaty"
sender = ["ZW", "KP"]
notice_type = ["red", "diffusion"]

[[inbound.require_review]]
id = "fr-review-all-blue"
reason = "blue notices are checked here first"
notice_type = "blue"
"""


def test_a_matching_rule_names_itself_and_others_do_not_match() -> None:
    """Both matchers must match; the first matching rule in file order is named."""
    policy = parse_policy(FR, source="FR.toml")
    assert review_demand(policy, notice_type="red", sender="ZW") == "fr-review-non-treaty"
    assert review_demand(policy, notice_type="diffusion", sender="KP") == "fr-review-non-treaty"
    assert review_demand(policy, notice_type="red", sender="IT") is None
    assert review_demand(policy, notice_type="yellow", sender="ZW") is None
    assert review_demand(policy, notice_type="blue", sender="IT") == "fr-review-all-blue"


def test_on_a_set_the_receiving_bureau_picks_the_file() -> None:
    """A PolicySet needs the recipient; a country without a file and without default: error."""
    policies = PolicySet([parse_policy(FR, source="FR.toml")])
    assert review_demand(policies, notice_type="blue", sender="IT", recipient="FR") == (
        "fr-review-all-blue"
    )
    with pytest.raises(PolicyError, match=r"review_demand on a PolicySet needs recipient="):
        review_demand(policies, notice_type="blue", sender="IT")
    with pytest.raises(PolicyError, match="no policy for DE and no default policy"):
        review_demand(policies, notice_type="blue", sender="IT", recipient="DE")


def test_a_review_rule_without_a_matcher_is_refused_with_its_line() -> None:
    """A rule matching every notice must be written as such in the network rules, not here."""
    text = b'schema = "nbx-policy/1"\ncountry = "FR"\n[[inbound.require_review]]\n'
    text += b'id = "x"\nreason = "r"\n'
    with pytest.raises(PolicyInvalid, match=r"FR\.toml:3: rule 'x': a review rule needs"):
        parse_policy(text, source="FR.toml")


def test_review_rule_ids_share_the_files_id_space_and_keys_are_checked() -> None:
    """An id used by a decline rule too, a misspelt key, an unknown notice type: each one line."""
    both = FR + b'\n[[inbound.decline]]\nid = "fr-review-all-blue"\nreason = "r"\nsender = "IT"\n'
    with pytest.raises(PolicyInvalid, match=r"rule 'fr-review-all-blue': duplicate rule id"):
        parse_policy(both, source="FR.toml")
    typo = FR.replace(b'notice_type = "blue"', b'notice_types = "blue"')
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(typo, source="FR.toml")
    assert str(caught.value) == (
        "FR.toml:13: rule 'fr-review-all-blue': unknown key 'notice_types' "
        "(allowed: id, reason, notice_type, sender)"
    )
    unknown = FR.replace(b'notice_type = "blue"', b'notice_type = "mauve"')
    with pytest.raises(PolicyInvalid, match=r"got 'mauve'"):
        parse_policy(unknown, source="FR.toml")
