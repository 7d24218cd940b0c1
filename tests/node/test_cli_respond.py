"""`nbx respond` end to end on the real broker: FR answers IT's red notice located, then
arrested with a photo by reference; IT's `nbx status` shows both answers, DE (whom the notice
shares responses with) holds copies, FR's `nbx inbox show` shows what it answered; a node that
does not hold the notice, a response without its required note and an attachment without its
hash fail with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

from broker import devbroker
from broker.examples import notices_dir, policies_dir
from broker.node.provision import provision
from tests.node.test_cli_node import consume_together
from tests.node.test_cli_node import nbx_in_process as nbx
from tests.node.test_cli_review import _consume, _one_line

NOTICE = "IT-2025-0001"
SHA = "ab" * 32


def test_respond_and_see_the_answers(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """The story above, with the daemons run by `nbx consume --until-idle`."""
    configs = provision(
        tmp_path,
        ["IT", "FR", "DE"],
        bootstrap=fresh_broker.bootstrap,
        policies=policies_dir(),
        enable_idempotence=idempotence_supported,
        session_timeout_ms=6000,
    )
    data = json.loads((notices_dir() / "red.json").read_text())
    data["responses_shared_with"] = ["DE"]
    red = tmp_path / "red.json"
    red.write_text(json.dumps(data))
    out = nbx("publish", "--config", str(configs["IT"]), str(red), "--to", "FR,DE")
    assert out.returncode == 0, out.stderr
    consume_together(configs["FR"], configs["DE"])

    fr = str(configs["FR"])
    located = nbx("respond", "--config", fr, NOTICE, "--kind", "located",
                  "--note", "seen in Lyon")  # fmt: skip
    assert located.returncode == 0, located.stderr
    lines = located.stdout.splitlines()
    assert lines[0].startswith(f"response located {NOTICE} msg ")
    assert lines[1:] == ["  DE  sent", "  IT  sent"]
    arrested = nbx("respond", "--config", fr, NOTICE, "--kind", "arrested", "--note",
                   "provisionally arrested", "--attach", "https://nbx.fr.example/p/1",
                   "--sha256", SHA, "--media-type", "image/jpeg", "--no-share",
                   "--json")  # fmt: skip
    assert arrested.returncode == 0, arrested.stderr
    sent = json.loads(arrested.stdout)
    assert (sent["kind"], sent["response"]) == ("response", "arrested")
    assert [r["recipient"] for r in sent["recipients"]] == ["IT"]  # --no-share

    consume_together(configs["IT"], configs["DE"])
    status = nbx("status", "--config", str(configs["IT"]), NOTICE, "--json")
    assert status.returncode == 0, status.stderr
    answers = json.loads(status.stdout)["responses"]
    assert [(a["direction"], a["by"], a["kind"], a["note"]) for a in answers] == [
        ("received", "FR", "located", "seen in Lyon"),
        ("received", "FR", "arrested", "provisionally arrested"),
    ]
    assert answers[1]["attachments"] == [
        {
            "uri": "https://nbx.fr.example/p/1",
            "sha256": SHA,
            "media_type": "image/jpeg",
            "title": None,
        }
    ]
    text = nbx("status", "--config", str(configs["IT"]), NOTICE).stdout.splitlines()
    shown = [line for line in text if line.startswith(("response", "  "))]
    assert [line.split()[:2] + line.split()[3:5] for line in shown if line[0] == "r"] == [
        ["response", "located", "from", "FR"],
        ["response", "arrested", "from", "FR"],
    ]
    assert "  note: seen in Lyon" in shown
    assert f"  attachment: https://nbx.fr.example/p/1 (image/jpeg, sha256 {SHA})" in shown

    _consume(configs["FR"])  # the receipts of its responses
    mine = nbx("inbox", "show", "--config", fr, NOTICE, "--purpose", "case 7", "--json")
    assert mine.returncode == 0, mine.stderr
    record = json.loads(mine.stdout)
    assert [(a["direction"], a["kind"], a["to"]) for a in record["responses"]] == [
        ("sent", "located", ["DE", "IT"]),
        ("sent", "arrested", ["IT"]),
    ]
    shared = nbx("inbox", "show", "--config", str(configs["DE"]), NOTICE, "--purpose", "case 7")
    assert shared.returncode == 0, shared.stderr
    assert [line.split()[1] for line in shared.stdout.splitlines() if line.startswith(
        "response ")] == ["located"]  # fmt: skip
    fr_status = nbx("status", "--config", fr, NOTICE, "--json")
    receipts = {
        (r["recipient"], x["status"])
        for r in json.loads(fr_status.stdout)["recipients"]
        for m in r["messages"]
        for x in m["receipts"]
    }
    assert receipts == {("IT", "delivered"), ("DE", "delivered")}

    own = nbx("respond", "--config", str(configs["IT"]), NOTICE, "--kind", "located")
    assert own.returncode == 1
    assert _one_line(own) == (
        f"nbx: error: {NOTICE}: no such notice received by this node (nbx inbox list)"
    )
    no_note = nbx("respond", "--config", fr, NOTICE, "--kind", "no-action")
    assert no_note.returncode == 1
    assert _one_line(no_note) == (
        "nbx: error: invalid response: body: Value error, note: required for a no-action "
        "response (say why / what)"
    )
    no_hash = nbx("respond", "--config", fr, NOTICE, "--kind", "hit",
                  "--attach", "urn:fr:1", "--media-type", "image/png")  # fmt: skip
    assert no_hash.returncode == 1
    assert _one_line(no_hash) == (
        "nbx: error: every --attach needs its --sha256 and --media-type (in the same order)"
    )
