"""Path patterns: what '*' and '**' match, and which patterns are rejected."""

from __future__ import annotations

import pytest

from broker.policy.patterns import PatternError, compile_pattern


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("person.family_name", "person.family_name", True),
        ("person.family_name", "person.family_names", False),
        ("person.*", "person.family_name", True),
        ("person.*", "person.biometrics.photos", False),
        ("person.biometrics.*", "person.biometrics.photos", True),
        ("person.*_name", "person.family_name", True),
        ("person.*_name", "person.forenames", False),
        ("person.**", "person.biometrics.photos", True),
        ("person.**", "person", False),
        ("**.photos", "person.biometrics.photos", True),
        ("judicial.*", "person.judicial.charges", False),
    ],
)
def test_pattern_matches_whole_path(pattern: str, path: str, matches: bool) -> None:
    """A pattern matches the whole dotted path; '*' stays in one segment, '**' spans segments."""
    assert compile_pattern(pattern).matches(path) is matches


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty pattern"),
        ("person..name", "empty segment"),
        ("person.", "empty segment"),
        ("person.**name", "'**' must be a whole segment"),
        ("person.Family", "may hold only"),
        ("person.[a]", "may hold only"),
    ],
)
def test_bad_patterns_are_rejected(pattern: str, message: str) -> None:
    """Malformed patterns raise PatternError saying what is wrong."""
    with pytest.raises(PatternError, match=message.replace("*", r"\*").replace("[", r"\[")):
        compile_pattern(pattern)


def test_exactness_and_deep_wildcard() -> None:
    """Exact patterns and '**' are told apart (they drive specificity and explicit naming)."""
    assert compile_pattern("person.family_name").is_exact
    assert not compile_pattern("person.*").is_exact
    assert compile_pattern("person.**").has_deep_wildcard
    assert not compile_pattern("person.*.*").has_deep_wildcard
