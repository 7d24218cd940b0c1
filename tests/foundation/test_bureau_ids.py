"""One bureau id: an ISO 3166-1 alpha-2 code or XA..XZ, checked by broker.ids everywhere a
bureau id comes in (models, node config, key directory, topic names, policy file names, CLI)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pydantic import TypeAdapter, ValidationError

from broker.cli import main
from broker.cli.node_cmds import _recipients
from broker.ids import BureauId, bureau_id, is_bureau_id
from broker.keys.directory import BureauRecord
from broker.node.config import NodeConfig
from broker.policy import PolicyInvalid, load_policies
from broker.schemas.common import BureauId as SchemaBureauId
from broker.transport.topics import inbox, receipts

GOOD = ["FR", "DE", "XI", "XA", "XZ"]
#: shaped like a bureau id, but neither an ISO country nor XA..XZ
UNKNOWN = ["QQ", "ZZ", "AA"]
MISSHAPEN = ["fr", "FRA", "F", "", "F1", "FR\n", " FR"]


def test_bureau_id_accepts_countries_and_organisations() -> None:
    """ISO countries and XA..XZ pass; anything else fails with one line saying why."""
    for code in GOOD:
        assert bureau_id(code) == code
        assert is_bureau_id(code)
    for code in UNKNOWN:
        with pytest.raises(ValueError, match=f"unknown ISO 3166-1 alpha-2 country code '{code}'"):
            bureau_id(code)
        assert not is_bureau_id(code)
    for code in MISSHAPEN:
        with pytest.raises(ValueError, match="expected two upper-case letters such as FR"):
            bureau_id(code)
        assert not is_bureau_id(code)


def test_the_pydantic_type_is_the_one_definition() -> None:
    """The schemas' BureauId is broker.ids.BureauId; it refuses what bureau_id refuses."""
    assert SchemaBureauId is BureauId
    adapter = TypeAdapter(BureauId)
    assert adapter.validate_python("XI") == "XI"
    for code in UNKNOWN + MISSHAPEN:
        with pytest.raises(ValidationError):
            adapter.validate_python(code)


def test_topic_names_take_bureau_ids_only() -> None:
    """A topic name is built for a bureau id, never for another string."""
    assert inbox("XI") == "nbx.inbox.XI"
    assert receipts("FR") == "nbx.receipts.FR"
    for code in UNKNOWN + MISSHAPEN:
        with pytest.raises(ValueError, match=re.escape(repr(code))):
            inbox(code)


def test_node_config_and_directory_refuse_an_unknown_bureau() -> None:
    """The node's own id and a directory entry's id are bureau ids."""
    for code in UNKNOWN:
        with pytest.raises(ValidationError, match="unknown ISO 3166-1"):
            NodeConfig.model_validate({"bureau": code})
        with pytest.raises(ValidationError, match="unknown ISO 3166-1"):
            BureauRecord.model_validate({"id": code, "name": "x", "keys": []})
    with pytest.raises(ValidationError, match="should match pattern"):
        NodeConfig.model_validate({"bureau": "fr"})


def test_policy_file_names_are_bureau_ids(tmp_path: Path) -> None:
    """``QQ.toml`` is not a policy file name: QQ is no bureau."""
    (tmp_path / "QQ.toml").write_text('schema = "nbx-policy/1"\n')
    with pytest.raises(PolicyInvalid, match=r"file name must be CC\.toml"):
        load_policies(tmp_path)


def test_cli_refuses_an_unknown_bureau() -> None:
    """``--to`` and the keys commands' BUREAU refuse a code that is no bureau."""
    assert _recipients("fr, XI") == ["FR", "XI"]
    with pytest.raises(click.BadParameter, match="country codes like FR,DE"):
        _recipients("FR,QQ")
    result = CliRunner().invoke(main, ["keys", "new-bureau", "QQ", "--dir", "unused"])
    assert result.exit_code == 2
    assert "is not a bureau id" in result.output
