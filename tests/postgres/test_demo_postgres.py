"""`nbx demo --store postgresql --json`: the whole demo with every bureau's store in a database
of its own on a PostgreSQL server the demo starts and stops. The stories are read back from those
stores, so the demo passing on them shows the PostgreSQL store keeps the SQLite store's contract
end to end (tests/foundation/test_demo.py checks each story in detail on SQLite). Not marked
`e2e`: what it adds is the store, not the broker, so the tansu lane does not run it again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from broker.demo import NETWORK
from broker.node.network import PG_PASSWORD_ENV
from tests.conftest import broker_impl
from tests.postgres.test_dev_postgres import _wait_gone

STORE_JSON = ("--store", "postgresql", "--json")
pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.process]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The JSON report of one `nbx demo --store postgresql --json` run."""
    env = {k: v for k, v in os.environ.items() if k != PG_PASSWORD_ENV}
    out = subprocess.run(
        [sys.executable, "-m", "broker", "demo", "--impl", broker_impl(), *STORE_JSON],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    parsed: dict[str, Any] = json.loads(out.stdout)
    return parsed


def test_every_story_holds_with_the_stores_in_postgresql(report: dict[str, Any]) -> None:
    """The exchange, the cancel, the stories, the audit check: all ok, read back from the
    PostgreSQL stores; every bureau and body had a database of its own in which its node made the
    store's tables; the report validates against schemas/cli/demo.json."""
    from tests.cli.test_json_schemas import validate

    validate("demo", report)
    assert report["ok"] is True
    assert {name: story["ok"] for name, story in report["stories"].items()} == dict.fromkeys(
        report["stories"], True
    )
    assert report["audit"]["ok"] is True
    store = report["store"]
    assert store["kind"] == "postgresql"
    assert sorted(store["databases"]) == sorted(NETWORK)
    for cc, db in store["databases"].items():
        assert db["name"] == f"nbx_{cc.lower()}"
        assert db["tables"] > 0, cc
    page = Path(report["transparency"]["html"])
    page.unlink(missing_ok=True)
    page.parent.rmdir()


def test_the_demos_server_is_stopped(report: dict[str, Any]) -> None:
    """The PostgreSQL server the demo started is gone once the demo returned."""
    assert _wait_gone(report["store"]["server_pid"], timeout_s=5)
