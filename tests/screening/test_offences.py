"""The offence list: every category matches in every language it has, near misses do not, and a
bureau's own list is read from the node config; a broken list is one clear error line."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.errors import ConfigError
from broker.node.config import NodeConfig
from broker.screening import BUNDLED_OFFENCES, load_offences, parse_offences
from broker.screening.offences import compile_pattern
from broker.screening.text import words
from broker.vocab import ScreeningFlag

#: one charge per (category, language) of the bundled list, written as a bureau would
CHARGES: dict[tuple[str, str], str] = {
    ("speech-assembly", "en"): "Organising an unauthorised demonstration in the capital",
    ("speech-assembly", "fr"): "Participation à une manifestation non autorisée",
    ("speech-assembly", "es"): "Convocatoria de una MANIFESTACIÓN no autorizada",
    ("insulting-officials", "en"): "Insulting the Head of State in a social media post",
    ("insulting-officials", "fr"): "Offense au chef de l'État",
    ("insulting-officials", "es"): "Injurias graves a la Corona",
    ("separatism-extremism", "en"): "Propaganda of separatism on the internet",
    ("separatism-extremism", "fr"): "Atteinte à l'intégrité du territoire national",
    ("separatism-extremism", "es"): "Delito de sedición",
    ("apostasy-blasphemy", "en"): "Blasphemy against the prophet",
    ("apostasy-blasphemy", "fr"): "Propos blasphématoires",
    ("apostasy-blasphemy", "es"): "Delito de apostasía",
    ("private-disputes", "en"): "Failure to repay a private loan",
    ("private-disputes", "fr"): "Émission de chèques sans provision",
    ("private-disputes", "es"): "Impago de una deuda con un proveedor",
    ("military-desertion", "en"): "Evading military service during the mobilisation",
    ("military-desertion", "fr"): "Désertion à l'étranger en temps de paix",
    ("military-desertion", "es"): "Deserción de las fuerzas armadas",
}

#: charges that resemble a listed offence but are ordinary crimes: no category matches
NEAR_MISSES = [
    "Assault on an official",
    "Violence against a public official causing injury",
    "Murder of a police officer",
    "Aggravated fraud against investors (EUR 4.2 million)",
    "Money laundering",
    "Tax evasion",
    "Armed robbery of a convoy in the desert",
    "Terrorist bombing of a railway station",
    "Kidnapping of a state prosecutor",
    "Violences sur agent de la force publique",
    "Escroquerie en bande organisée",
    "Atentado contra la autoridad",
    "Tráfico de drogas",
]


def test_every_category_matches_in_every_language_it_lists() -> None:
    """Each example charge matches its own category and no other; the examples cover every
    category and language of the bundled list."""
    offences = load_offences()
    listed = {(c.id, p.language) for c in offences.categories for p in c.patterns}
    assert listed == set(CHARGES)
    for (category, language), text in CHARGES.items():
        assert [c.id for c, _ in offences.matches(text)] == [category], text
        own = next(c for c in offences.categories if c.id == category)
        folded = " ".join(words(text))
        assert any(p.regex.search(folded) for p in own.patterns if p.language == language), text


def test_the_categories_raise_the_flag_of_their_rule() -> None:
    """Private and debt disputes are excluded by the rules; the others are of Art. 3 character."""
    flags = {c.id: c.flag for c in load_offences().categories}
    assert flags == {
        "speech-assembly": ScreeningFlag.POLITICAL_OFFENCE,
        "insulting-officials": ScreeningFlag.POLITICAL_OFFENCE,
        "separatism-extremism": ScreeningFlag.POLITICAL_OFFENCE,
        "apostasy-blasphemy": ScreeningFlag.POLITICAL_OFFENCE,
        "private-disputes": ScreeningFlag.EXCLUDED_OFFENCE,
        "military-desertion": ScreeningFlag.POLITICAL_OFFENCE,
    }


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_a_near_miss_matches_no_category(text: str) -> None:
    """An ordinary crime that shares words with a listed offence is not flagged."""
    assert load_offences().matches(text) == []


def test_insulting_an_official_is_not_assaulting_one() -> None:
    """The brief's example: the same official, another verb."""
    offences = load_offences()
    assert [c.id for c, _ in offences.matches("Insulting an official")] == ["insulting-officials"]
    assert offences.matches("Assault on an official") == []


def test_patterns_match_whole_words_case_and_accent_insensitively() -> None:
    """``*`` extends a word, ``...`` skips at most three words, nothing matches inside a word."""
    awol = compile_pattern("awol")
    assert awol.search("went awol")
    assert not awol.search("kawolski")
    insult = compile_pattern("insult* ... official*")
    assert insult.search("insulted two senior officials")
    assert insult.search("insult officials")
    assert not insult.search("insulted the victims and then assaulted officials")
    assert not insult.search("officials insulted")
    chef = compile_pattern("outrage* ... chef de l'État")
    assert chef.search("outrage au chef de l etat")
    assert load_offences().matches("OUTRAGE AU CHEF DE L’ÉTAT")


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("... insult*", "'...' must stand between two words"),
        ("insult* ... ... official", "'...' must stand between two words"),
        ("insult* ...", "a pattern needs at least one word and may not end with '...'"),
        ("in*sult", "'in*sult' is not a word (letters, then an optional '*')"),
        ("!!", "'!!' is not a word (letters, then an optional '*')"),
    ],
)
def test_a_bad_pattern_is_one_error_line(pattern: str, problem: str) -> None:
    """The file, the category and the pattern are named."""
    text = f'[category.x]\ntitle = "x"\nflag = "political-offence"\nen = ["{pattern}"]\n'
    with pytest.raises(ConfigError) as err:
        parse_offences(text, "mine.toml")
    assert str(err.value) == f"mine.toml: category 'x': pattern {pattern!r}: {problem}"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '[category.x]\ntitle = "x"\nflag = "refusal-rate"\nen = ["a"]\n',
            "mine.toml: category 'x': flag must be one of excluded-offence, political-offence, "
            "got 'refusal-rate'",
        ),
        (
            '[category.x]\ntitle = "x"\nflag = "political-offence"\nenglish = ["a"]\n',
            "mine.toml: category 'x': 'english' is neither title, flag nor a language code",
        ),
        (
            '[category.x]\ntitle = "x"\nflag = "political-offence"\n',
            "mine.toml: category 'x': has no patterns",
        ),
        (
            'format = "nbx-offences/2"\n',
            "mine.toml: format must be 'nbx-offences/1', got 'nbx-offences/2'",
        ),
        ("", "mine.toml: no [category.<id>] table"),
    ],
)
def test_a_broken_list_is_one_error_line(text: str, error: str) -> None:
    """A bureau's list that cannot be used is refused with the problem, not half-loaded."""
    with pytest.raises(ConfigError) as err:
        parse_offences(text, "mine.toml")
    assert str(err.value) == error


CONFIG = """bureau = "FR"
[keys]
dir = "keys"
[trust]
anchor = "keys/trust-anchor.pub"
directory = "directory.json"
[kafka]
bootstrap = "127.0.0.1:9092"
[policy]
dir = "policies"
[sink]
url = "sqlite:///FR.sqlite"
"""


def test_the_node_config_names_the_bundled_list_unless_the_bureau_gives_its_own(
    tmp_path: Path,
) -> None:
    """``[screening] offences`` defaults to the bundled list; a relative path is the config
    folder's, and that list is the one used."""
    plain = tmp_path / "plain.toml"
    plain.write_text(CONFIG)
    config = NodeConfig.load(plain)
    assert config.screening.offences == BUNDLED_OFFENCES
    assert config.screening.refusal_threshold == 0.2
    assert config.screening.protected == tmp_path / "protected-persons.json"

    (tmp_path / "mine.toml").write_text(
        '[category.road]\ntitle = "road traffic"\nflag = "excluded-offence"\n'
        'en = ["jaywalk*"]\nfr = ["traversée hors passage*"]\n'
    )
    own = tmp_path / "own.toml"
    own.write_text(CONFIG + '[screening]\noffences = "mine.toml"\nrefusal_threshold = 0.5\n')
    config = NodeConfig.load(own)
    assert config.screening.offences == tmp_path / "mine.toml"
    assert config.screening.refusal_threshold == 0.5
    offences = load_offences(config.screening.offences)
    assert [c.id for c, _ in offences.matches("Jaywalking on the motorway")] == ["road"]
    assert offences.matches("Insulting the head of state") == []


def test_a_missing_bureau_list_is_one_error_line(tmp_path: Path) -> None:
    """The node does not fall back to the bundled list when the bureau's own is missing."""
    with pytest.raises(ConfigError) as err:
        load_offences(tmp_path / "gone.toml")
    assert str(err.value) == f"{tmp_path / 'gone.toml'}: offence list not found"
