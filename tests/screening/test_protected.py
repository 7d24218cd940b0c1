"""The protected-persons list: keyed hashes that ignore the order of given names, accents, case
and spacing; a file that holds no name, mode 0600; the CLI with one clear line for a missing or
wrong secret."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.cli import main
from broker.errors import ConfigError
from broker.screening import (
    ProtectedPersons,
    count_protected,
    load_protected,
    normalised_identity,
    save_protected,
)
from tests.screening.test_offences import CONFIG

SECRET = "correct horse battery staple"
OTHER = "a different bureau secret!!"


def test_the_identity_ignores_given_name_order_accents_case_and_spacing() -> None:
    """Every spelling below is one person; the family name keeps its word order."""
    same = {
        normalised_identity("Müller-Lüdenscheidt", "Hans  Jürgen", "1990-01-31"),
        normalised_identity("MULLER LUDENSCHEIDT", "jürgen hans", "1990-01-31"),
        normalised_identity("  muller ludenscheidt ", "Jurgen\tHANS", " 1990-01-31"),
    }
    assert same == {"muller ludenscheidt|hans jurgen|1990-01-31"}
    assert normalised_identity("Ødegård", "Åse", "1971") == "odegard|ase|1971"
    assert normalised_identity("Straße", "", "1971") == "strasse||1971"


def test_the_hash_matches_every_spelling_and_nothing_else() -> None:
    """A listed person is found whatever the spelling; another date, name or key is not."""
    persons = ProtectedPersons(SECRET.encode()).added("Rossetti", "Marco Aurelio", "1979-11-03")
    assert len(persons) == 1
    assert persons.contains("ROSSETTI", "Aurelio Marco", "1979-11-03")
    assert persons.contains("Rossétti", "marco  aurélio", "1979-11-03")
    assert not persons.contains("Rossetti", "Marco Aurelio", "1979-11-04")
    assert not persons.contains("Rossetti", "Marco", "1979-11-03")
    assert not persons.contains("Rossi", "Marco Aurelio", "1979-11-03")
    assert not persons.contains("", "", "")
    other_key = ProtectedPersons(OTHER.encode(), persons.hashes)
    assert not other_key.contains("Rossetti", "Marco Aurelio", "1979-11-03")
    assert persons.added("ROSSETTI", "aurelio marco", "1979-11-03") == persons


@pytest.mark.parametrize(
    ("family", "dob", "error"),
    [
        ("--", "1990-01-31", "the family name has no letters"),
        ("Rossi", "31/01/1990", "the date of birth must be YYYY-MM-DD (or YYYY-MM, YYYY)"),
    ],
)
def test_an_entry_without_a_name_or_a_date_is_refused(family: str, dob: str, error: str) -> None:
    """Nothing unusable is hashed into the list."""
    with pytest.raises(ConfigError) as err:
        ProtectedPersons(SECRET.encode()).added(family, "", dob)
    assert str(err.value) == error


def test_the_file_is_0600_holds_no_name_and_refuses_another_secret(tmp_path: Path) -> None:
    """Saved and read back: the hashes survive, the names do not appear, the mode is 0600, a
    file that is not a list and a wrong secret are one clear error each."""
    path = tmp_path / "protected.json"
    persons = ProtectedPersons(SECRET.encode()).added("Lindqvist", "Erik", "1990-09-09")
    save_protected(path, persons)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes().lower()
    for needle in (b"lindqvist", b"erik", b"1990-09-09", SECRET.encode()):
        assert needle not in raw
    assert load_protected(path, SECRET.encode(), secret_name="S") == persons
    assert count_protected(path) == 1
    assert count_protected(tmp_path / "none.json") == 0
    with pytest.raises(ConfigError) as err:
        load_protected(path, OTHER.encode(), secret_name="S")
    assert str(err.value) == (
        f"{path}: the secret in $S is not the one this protected-persons list was made with"
    )
    path.write_text(json.dumps({"format": "nbx-protected-persons/1", "names": ["Erik"]}))
    with pytest.raises(ConfigError) as err:
        count_protected(path)
    assert str(err.value) == f"{path}: not a protected-persons list (nbx-protected-persons/1)"


def _nbx(config: Path, *args: str, secret: str | None = SECRET) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, [*args, "--config", str(config)], env={"NBX_SCREENING_SECRET": secret}
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A node config whose protected-persons list is ``protected-persons.json`` beside it."""
    path = tmp_path / "node.toml"
    path.write_text(CONFIG)
    return path


def test_protect_add_and_count(config: Path) -> None:
    """Names go in, only hashes come out; the same person twice is one entry."""
    listed = config.parent / "protected-persons.json"
    add = ["protect", "add", "--family-name", "Müller-Lüdenscheidt", "--given-names",
           "Hans Jürgen", "--dob", "1990-01-31"]  # fmt: skip
    assert _nbx(config, "screening", *add) == (0, "added (1 protected persons)\n", "")
    again = ["protect", "add", "--family-name", "MULLER LUDENSCHEIDT", "--given-names",
             "jurgen hans", "--dob", "1990-01-31"]  # fmt: skip
    assert _nbx(config, "screening", *again) == (
        0,
        "already on the list (1 protected persons)\n",
        "",
    )
    other = ["protect", "add", "--family-name", "Rossi", "--dob", "1980"]
    assert _nbx(config, "screening", *other) == (0, "added (2 protected persons)\n", "")
    assert _nbx(config, "screening", "protect", "count") == (0, "2 protected persons\n", "")
    assert _nbx(config, "screening", "protect", "count", secret=None) == (
        0,
        "2 protected persons\n",
        "",
    )
    assert stat.S_IMODE(listed.stat().st_mode) == 0o600
    raw = listed.read_bytes()
    for needle in ("müller", "muller", "ludenscheidt", "hans", "jürgen", "jurgen", "rossi",
                   "1990-01-31", "1980"):  # fmt: skip
        assert needle.encode() not in raw.lower(), needle
    persons = load_protected(listed, SECRET.encode(), secret_name="S")
    assert persons.contains("Muller Ludenscheidt", "Hans Jurgen", "1990-01-31")


def test_a_missing_or_wrong_secret_is_one_clear_line(config: Path) -> None:
    """No secret, a short one, another bureau's: one line on stderr, exit 1, the list unchanged."""
    add = ["protect", "add", "--family-name", "Rossi", "--dob", "1980-02-02"]
    assert _nbx(config, "screening", *add, secret=None) == (
        1,
        "",
        "nbx: error: the protected-persons secret is not set: put it in $NBX_SCREENING_SECRET\n",
    )
    assert _nbx(config, "screening", *add, secret="short") == (
        1,
        "",
        "nbx: error: the protected-persons secret in $NBX_SCREENING_SECRET is shorter than "
        "16 bytes\n",
    )
    assert _nbx(config, "screening", *add)[0] == 0
    listed = config.parent / "protected-persons.json"
    before = listed.read_bytes()
    wrong = (
        f"nbx: error: {listed}: the secret in $NBX_SCREENING_SECRET is not the one this "
        "protected-persons list was made with\n"
    )
    assert _nbx(config, "screening", *add, secret=OTHER) == (1, "", wrong)
    assert _nbx(config, "screening", "protect", "count", secret=OTHER) == (1, "", wrong)
    assert listed.read_bytes() == before
