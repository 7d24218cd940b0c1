"""``screen`` over disclosed views: the exact flags and reasons, fewer flags (never an error) when
fields are withheld or malformed, no personal data in any reason, and a property: it never raises
on any JSON-like view."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.cli import main
from broker.examples import notices_dir
from broker.screening import Flag, ProtectedPersons, load_offences, save_protected, screen
from broker.screening.screen import OFFENCE_TEXT_FIELDS
from broker.vocab import ScreeningFlag
from tests.screening.test_offences import CONFIG

SECRET = b"correct horse battery staple"
POLITICAL = ScreeningFlag.POLITICAL_OFFENCE
EXCLUDED = ScreeningFlag.EXCLUDED_OFFENCE


def _example(kind: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((notices_dir() / f"{kind}.json").read_text())
    return data


def _screen(view: Any, **kw: Any) -> list[Flag]:
    notice_type = view.get("notice_type", "red") if isinstance(view, dict) else "red"
    kw.setdefault("sender", "IT")
    return screen(view, notice_type=notice_type, offences=load_offences(), **kw)


def _political_red() -> dict[str, Any]:
    """The red example with a second charge of insulting the President, a summary of facts
    about a protest and a charge whose nature is a private dispute."""
    red = _example("red")
    charges = red["judicial"]["charges"]
    charges[1]["description"] = "Insulting the President of the Republic on social media"
    charges.append({"description": "Unpaid invoices of a supplier", "nature": "private_dispute"})
    red["judicial"]["summary_of_facts"] = "The subject spoke at an unauthorised rally."
    return red


def test_the_bundled_example_notices_raise_no_flag() -> None:
    """Ordinary crimes (fraud, laundering, burglary, trafficking...) are not flagged."""
    for path in sorted(notices_dir().glob("*.json")):
        view = json.loads(path.read_text())
        assert _screen(view, sender=view["issuing_bureau"]) == [], path.name


def test_a_political_red_notice_gets_each_flag_with_its_reason() -> None:
    """One flag per matched category (first field and pattern, in the list's order), one per
    excluded charge nature, then the sender's flags; reasons name field, category and pattern."""
    red = _political_red()
    protected = ProtectedPersons(SECRET).added("Rossetti", "Marco Aurelio", "1979-11-03")
    flags = _screen(red, protected=protected, supervised=True, refusal_rate=0.35)
    assert flags == [
        Flag(
            POLITICAL,
            "judicial.summary_of_facts matches the offence category 'speech and assembly "
            "offences' (pattern 'unauthori* ... rally').",
        ),
        Flag(
            POLITICAL,
            "judicial.charges[1].description matches the offence category 'insulting officials "
            "or the head of state' (pattern 'insult* ... president').",
        ),
        Flag(
            EXCLUDED,
            "judicial.charges[2].nature is 'private_dispute': the rules exclude matters that "
            "are not criminal.",
        ),
        Flag(
            ScreeningFlag.PROTECTED_PERSON,
            "The subject's name and date of birth are on this bureau's protected-persons list.",
        ),
        Flag(ScreeningFlag.SUPERVISED_SENDER, "The sender IT is under heightened supervision."),
        Flag(
            ScreeningFlag.REFUSAL_RATE,
            "The sender IT had 35% of its recent messages refused (threshold 20%).",
        ),
    ]
    text = json.dumps([f.to_json() for f in flags]).casefold()
    for personal in ("rossetti", "marco", "aurelio", "1979", "social media", "republic"):
        assert personal not in text, personal


def test_offence_texts_are_read_where_each_notice_type_keeps_them() -> None:
    """A diffusion's request, a blue notice's related offence, a green notice's offence types:
    each is screened; a translation of a charge too."""
    diffusion = _example("diffusion")
    diffusion["details"]["request"] = "Locate; wanted for draft evasion. Do not arrest."
    assert [f.reason for f in _screen(diffusion, sender="SE")] == [
        "details.request matches the offence category 'military desertion or draft evasion' "
        "(pattern 'draft evasion')."
    ]
    blue = _example("blue")
    blue["inquiry"]["related_offence"] = "Apostasía"
    green = _example("green")
    green["warning"]["offence_types"] = ["burglary", "Propagande séparatiste"]
    red = _example("red")
    red["judicial"]["charges"][0]["translation"] = "Outrage au drapeau national"
    assert [f.reason.split(" matches")[0] for f in _screen(blue)] == ["inquiry.related_offence"]
    assert [f.reason.split(" matches")[0] for f in _screen(green)] == ["warning.offence_types[1]"]
    assert [f.reason.split(" matches")[0] for f in _screen(red)] == [
        "judicial.charges[0].translation"
    ]
    assert set(OFFENCE_TEXT_FIELDS) == {
        "red", "yellow", "blue", "black", "green", "orange", "purple", "silver", "un", "diffusion"
    }  # fmt: skip


def test_an_alias_with_the_subjects_date_of_birth_is_found() -> None:
    """The subject's alias is looked up with the subject's date of birth."""
    protected = ProtectedPersons(SECRET).added("Rossi", "Marco", "1979-11-03")
    assert _screen(_example("red"), protected=protected) == [
        Flag(
            ScreeningFlag.PROTECTED_PERSON,
            "An alias of the subject, with the subject's date of birth, is on this bureau's "
            "protected-persons list.",
        )
    ]
    other = ProtectedPersons(SECRET).added("Rossi", "Marco", "1979-11-04")
    assert _screen(_example("red"), protected=other) == []


def _withheld(view: dict[str, Any], *paths: str) -> dict[str, Any]:
    out = copy.deepcopy(view)
    for path in paths:
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node[part]
        del node[leaf]
    return out


@pytest.mark.parametrize(
    ("withheld", "codes"),
    [
        ((), [POLITICAL, POLITICAL, EXCLUDED, ScreeningFlag.PROTECTED_PERSON]),
        (("judicial.charges",), [POLITICAL, ScreeningFlag.PROTECTED_PERSON]),
        (("judicial.summary_of_facts",), [POLITICAL, EXCLUDED, ScreeningFlag.PROTECTED_PERSON]),
        (("judicial",), [ScreeningFlag.PROTECTED_PERSON]),
        (("person.date_of_birth",), [POLITICAL, POLITICAL, EXCLUDED]),
        (("person.family_name", "person.aliases"), [POLITICAL, POLITICAL, EXCLUDED]),
        (("person", "judicial"), []),
    ],
)
def test_a_redacted_view_gives_fewer_flags_never_an_error(
    withheld: tuple[str, ...], codes: list[ScreeningFlag]
) -> None:
    """Withheld units are absent from a view: what is not there cannot be flagged."""
    protected = ProtectedPersons(SECRET).added("Rossetti", "Marco Aurelio", "1979-11-03")
    view = _withheld(_political_red(), *withheld)
    assert [f.code for f in _screen(view, protected=protected)] == codes


@pytest.mark.parametrize(
    "view",
    [
        None,
        [],
        "red",
        {"judicial": None},
        {"judicial": {"charges": "Insulting the King"}},
        {"judicial": {"charges": [None, 3, ["x"], {"description": 7, "nature": ["x"]}]}},
        {"person": "ROSSETTI", "details": {"request": None}},
        {"person": {"family_name": 3, "aliases": {"family_name": "Rossi"}}},
    ],
)
def test_malformed_views_give_no_flag_and_no_error(view: Any) -> None:
    """Wrong types anywhere are skipped."""
    protected = ProtectedPersons(SECRET).added("Rossi", "", "1980")
    assert _screen(view, protected=protected) == []


@pytest.mark.parametrize(
    ("rate", "threshold", "flagged"),
    [
        (None, 0.2, False),
        (0.2, 0.2, False),
        (0.2001, 0.2, True),
        (0.5, 0.6, False),
        (float("nan"), 0.2, False),
        (float("inf"), 0.2, False),
        (True, 0.2, False),
        (1.0, 0.0, True),
    ],
)
def test_the_refusal_rate_is_flagged_only_above_the_threshold(
    rate: Any, threshold: float, flagged: bool
) -> None:
    """Strictly above; a rate that is not a finite number is no rate."""
    flags = _screen({}, refusal_rate=rate, refusal_threshold=threshold)
    assert [f.code for f in flags] == ([ScreeningFlag.REFUSAL_RATE] if flagged else [])


def test_the_reason_names_no_sender_that_is_not_a_bureau_id() -> None:
    """The sender is named only when it is a bureau id (never free text)."""
    assert _screen({}, sender="Mr Smith", supervised=True) == [
        Flag(ScreeningFlag.SUPERVISED_SENDER, "The sender is under heightened supervision.")
    ]


KEYS = st.sampled_from(
    [
        "notice_type", "judicial", "charges", "description", "translation", "nature",
        "summary_of_facts", "details", "request", "inquiry", "related_offence", "warning",
        "offence_types", "person", "family_name", "forenames", "date_of_birth", "aliases",
    ]
) | st.text(max_size=8)  # fmt: skip
TEXTS = st.sampled_from(
    ["Insulting the King", "private_dispute", "Rossi", "1980", "désertion", ""]
) | st.text(max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXTS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)
NOTICE_TYPES = st.sampled_from([*OFFENCE_TEXT_FIELDS, "", "mauve"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    view=JSON,
    notice_type=NOTICE_TYPES,
    rate=st.none() | st.floats(),
    supervised=st.booleans(),
)
def test_screen_never_raises_on_a_json_like_view(
    view: Any, notice_type: str, rate: float | None, supervised: bool
) -> None:
    """Whatever the view holds, screen returns flags with a known code and a one-line reason."""
    protected = ProtectedPersons(SECRET).added("Rossi", "", "1980")
    flags = screen(
        view,
        notice_type=notice_type,
        sender="IT",
        offences=load_offences(),
        protected=protected,
        supervised=supervised,
        refusal_rate=rate,
    )
    for flag in flags:
        assert flag.code in set(ScreeningFlag)
        assert flag.reason
        assert "\n" not in flag.reason
    assert (ScreeningFlag.SUPERVISED_SENDER in [f.code for f in flags]) == supervised


def test_nbx_screening_check_prints_the_flags(tmp_path: Path) -> None:
    """The CLI screens a notice file with the node's lists; without a list file it needs no
    secret; with one, the protected person is flagged."""
    config = tmp_path / "node.toml"
    config.write_text(CONFIG)
    notice = tmp_path / "red.json"
    notice.write_text(json.dumps(_political_red()))
    runner = CliRunner()
    args = ["screening", "check", "--config", str(config), str(notice)]
    result = runner.invoke(main, [*args, "--supervised"], env={"NBX_SCREENING_SECRET": None})
    assert (result.exit_code, result.stderr) == (0, ""), result.exception
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "political-offence", "political-offence", "excluded-offence", "supervised-sender"
    ]  # fmt: skip
    assert result.stdout.splitlines()[-1] == (
        "supervised-sender: The sender IT is under heightened supervision."
    )
    protected = ProtectedPersons(SECRET).added("ROSSETTI", "Marco Aurelio", "1979-11-03")
    save_protected(tmp_path / "protected-persons.json", protected)
    result = runner.invoke(
        main, [*args, "--json", "--refusal-rate", "0.1"], env={"NBX_SCREENING_SECRET": None}
    )
    assert (result.exit_code, result.stderr) == (
        1,
        "nbx: error: the protected-persons secret is not set: put it in $NBX_SCREENING_SECRET\n",
    )
    result = runner.invoke(main, [*args, "--json"], env={"NBX_SCREENING_SECRET": SECRET.decode()})
    assert result.exit_code == 0, result.stderr
    assert [f["code"] for f in json.loads(result.stdout)] == [
        "political-offence", "political-offence", "excluded-offence", "protected-person"
    ]  # fmt: skip
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(_example("diffusion")))
    result = runner.invoke(
        main,
        ["screening", "check", "--config", str(config), str(plain)],
        env={"NBX_SCREENING_SECRET": SECRET.decode()},
    )
    assert (result.exit_code, result.stdout) == (0, "no flags\n")


def test_the_screening_package_logs_nothing_and_ships_its_list() -> None:
    """No module of broker/screening imports a logger (nothing it sees can leak into a log),
    and the bundled offence list is package data."""
    import ast
    import tomllib

    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / "broker" / "screening").glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not names & {"logging", "structlog", "broker.logging"}, path.name
    data = tomllib.loads((root / "pyproject.toml").read_text())
    assert "screening/*.toml" in data["tool"]["setuptools"]["package-data"]["broker"]


def test_the_tests_named_in_the_screening_section_exist() -> None:
    """docs/safeguards.md's "Screening aids" cites tests by ``file::name``: each one exists."""
    import re

    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "safeguards.md").read_text()
    section = text.split("## Screening aids", 1)[1].split("\n## ", 1)[0]
    current, checked = "", 0
    for path, name in re.findall(r"`(tests/[\w/]+\.py)?::(test_\w+)`", section):
        current = path or current
        source = (root / current).read_text()
        assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), f"{current}::{name}"
        checked += 1
    assert checked >= 10


def test_the_demo_story_a_supervised_senders_diffusion_for_insulting_the_head_of_state() -> None:
    """The charge and the supervision are both flagged; nothing is decided."""
    diffusion = _example("diffusion")
    diffusion["judicial"] = {"charges": [{"description": "Insulting the head of state"}]}
    assert _screen(diffusion, sender="SE", supervised=True) == [
        Flag(
            POLITICAL,
            "judicial.charges[0].description matches the offence category 'insulting officials "
            "or the head of state' (pattern 'insult* ... head of state').",
        ),
        Flag(ScreeningFlag.SUPERVISED_SENDER, "The sender SE is under heightened supervision."),
    ]


def test_a_screener_loads_a_nodes_lists_once(tmp_path: Path, monkeypatch: Any) -> None:
    """Screener.load takes the [screening] settings: no list file needs no secret; a list file
    needs the right one."""
    from broker.errors import ConfigError
    from broker.node.config import NodeConfig
    from broker.screening import Screener

    config = tmp_path / "node.toml"
    config.write_text(CONFIG + "[screening]\nrefusal_threshold = 0.5\n")
    settings = NodeConfig.load(config).screening
    monkeypatch.delenv("NBX_SCREENING_SECRET", raising=False)

    def load() -> Screener:
        return Screener.load(
            offences=settings.offences,
            protected=settings.protected,
            secret_env=settings.secret_env,
            refusal_threshold=settings.refusal_threshold,
        )

    screener = load()
    assert screener.protected is None
    red = _political_red()
    flags = screener.screen(red, notice_type="red", sender="IT", refusal_rate=0.4)
    assert [f.code for f in flags] == [POLITICAL, POLITICAL, EXCLUDED]
    save_protected(
        settings.protected,
        ProtectedPersons(SECRET).added("Rossetti", "Marco Aurelio", "1979-11-03"),
    )
    with pytest.raises(ConfigError):
        load()
    monkeypatch.setenv("NBX_SCREENING_SECRET", SECRET.decode())
    flags = load().screen(red, notice_type="red", sender="IT", refusal_rate=0.6)
    assert [f.code for f in flags] == [
        POLITICAL, POLITICAL, EXCLUDED, ScreeningFlag.PROTECTED_PERSON, ScreeningFlag.REFUSAL_RATE
    ]  # fmt: skip
