"""Join requests (broker.keys.join) and ``nbx directory add --request``: the proof of possession,
and every bad request refused in one line naming the file, the directory file unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from broker.cli import main
from broker.errors import KeyDirectoryError
from broker.keys import BureauKeys, Directory
from broker.keys.files import load_anchor_public_key
from broker.keys.join import (
    JOIN_DOMAIN,
    fingerprint,
    make_join_request,
    read_join_request,
    verify_join_request,
)
from broker.wire.canonical import b64u, jcs

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def run(*args: object, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert (result.exit_code == 0) == ok, result.output
    return result


def request_bytes(bureau: str = "PT", **extra: str) -> tuple[BureauKeys, bytes]:
    keys = BureauKeys.generate(bureau)
    name = extra.get("name", "NCB Lisbon")
    contact = extra.get("contact", "ncb@example.pt, +351 000 000")
    return keys, make_join_request(keys, name=name, contact=contact, now=NOW)


def resign(document: dict[str, Any], keys: BureauKeys) -> bytes:
    """``document`` with its body signed again by ``keys`` (a well-formed proof)."""
    body = document["join_request"]
    document["signature"] = b64u(keys.signing_key.sign(JOIN_DOMAIN + jcs(body)))
    return json.dumps(document).encode()


def test_a_join_request_verifies_and_names_its_keys() -> None:
    keys, data = request_bytes()
    request = verify_join_request(data, "PT.join.json")
    assert request.bureau == "PT"
    assert request.body.name == "NCB Lisbon"
    assert request.signing_kid == keys.signing_key_id
    uses = [(k.use, k.kid) for k in request.public_document().keys]
    assert uses == [("sign", keys.signing_key_id), ("encrypt", keys.encryption_key_id)]
    body = json.loads(data)["join_request"]
    assert request.fingerprint == fingerprint(jcs(body))
    assert len(request.fingerprint.split()) == 8


def bad_requests() -> list[tuple[str, Any, str]]:
    """(case, how to spoil the document, the expected refusal after the source)."""

    def other_signer(doc: dict[str, Any], keys: BureauKeys) -> bytes:
        return resign(doc, BureauKeys.generate("PT"))

    def changed_name(doc: dict[str, Any], keys: BureauKeys) -> bytes:
        doc["join_request"]["name"] = "NCB Elsewhere"
        return json.dumps(doc).encode()

    def stolen_key(doc: dict[str, Any], keys: BureauKeys) -> bytes:
        # somebody else's public signing key, signed with the requester's own: proof fails
        victim = BureauKeys.generate("PT")
        doc["join_request"]["keys"][0]["public"] = b64u(
            victim.signing_key.public_key().public_bytes_raw()
        )
        doc["join_request"]["keys"][0]["kid"] = victim.signing_key_id
        return resign(doc, keys)

    def two_signing(doc: dict[str, Any], keys: BureauKeys) -> bytes:
        extra = BureauKeys.generate("PT")
        entry = dict(doc["join_request"]["keys"][0])
        entry["public"] = b64u(extra.signing_key.public_key().public_bytes_raw())
        entry["kid"] = extra.signing_key_id
        doc["join_request"]["keys"].append(entry)
        return resign(doc, keys)

    def no_encryption(doc: dict[str, Any], keys: BureauKeys) -> bytes:
        doc["join_request"]["keys"] = doc["join_request"]["keys"][:1]
        return resign(doc, keys)

    def wrong_kid(doc: dict[str, Any], keys: BureauKeys) -> bytes:
        doc["join_request"]["keys"][1]["kid"] = keys.signing_key_id
        return resign(doc, keys)

    def unknown_field(doc: dict[str, Any], keys: BureauKeys) -> bytes:
        doc["join_request"]["roles"] = ["reviewer"]
        return resign(doc, keys)

    def bad_bureau(doc: dict[str, Any], keys: BureauKeys) -> bytes:
        doc["join_request"]["bureau"] = "Portugal"
        return resign(doc, keys)

    return [
        ("other signer", other_signer, "join request proof does not verify with its signing key"),
        ("changed name", changed_name, "join request proof does not verify with its signing key"),
        ("stolen key", stolen_key, "join request proof does not verify with its signing key"),
        (
            "two signing keys",
            two_signing,
            "a join request holds exactly one signing key, this one 2",
        ),
        ("no encryption key", no_encryption, "the join request holds no encryption key"),
        ("kid mismatch", wrong_kid, "invalid join request: keys.1: key "),
        (
            "unknown field",
            unknown_field,
            "invalid join request: roles: Extra inputs are not permitted",
        ),
        ("bad bureau id", bad_bureau, "invalid join request: bureau: "),
        ("not json", lambda d, k: b"{not json", "not a signed NBX join request"),
        (
            "no signature",
            lambda d, k: json.dumps({"join_request": d["join_request"]}).encode(),
            "not a signed NBX join request",
        ),
        (
            "signature not b64",
            lambda d, k: json.dumps({**d, "signature": "!!"}).encode(),
            "not a signed NBX join request",
        ),
    ]


@pytest.mark.parametrize(("case", "spoil", "line"), bad_requests(), ids=lambda v: str(v)[:20])
def test_a_bad_join_request_is_refused_in_one_line(case: str, spoil: Any, line: str) -> None:
    keys, data = request_bytes()
    spoiled = spoil(json.loads(data), keys)
    with pytest.raises(KeyDirectoryError) as caught:
        verify_join_request(spoiled, "net/PT.join.json")
    message = str(caught.value)
    assert message.startswith(f"net/PT.join.json: {line}"), (case, message)
    assert "\n" not in message


def test_reading_a_missing_or_folder_request_names_it(tmp_path: Path) -> None:
    with pytest.raises(KeyDirectoryError, match=r"PT.join.json: join request file not found$"):
        read_join_request(tmp_path / "PT.join.json")
    with pytest.raises(KeyDirectoryError, match=r"is a folder, not a join request file$"):
        read_join_request(tmp_path)


def test_a_name_too_long_is_refused_when_the_request_is_made() -> None:
    with pytest.raises(KeyDirectoryError, match=r"^join request: name: "):
        request_bytes(name="x" * 201)


@pytest.fixture
def network(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An anchor and a directory listing FR: (anchor folder, directory file, FR's keys folder)."""
    anchor = tmp_path / "anchor"
    run("keys", "init-anchor", anchor)
    run("keys", "new-bureau", "FR", "--dir", tmp_path / "fr")
    directory = tmp_path / "directory.json"
    fr_keys = tmp_path / "fr" / "FR.public.json"
    anchor_key = anchor / "trust-anchor.key"
    run("directory", "add", "FR", "--keys", fr_keys, "--name", "NCB Paris",
        "--file", directory, "--anchor-key", anchor_key)  # fmt: skip
    return anchor, directory, tmp_path / "fr"


def add_request(anchor: Path, directory: Path, request: Path, *more: str, ok: bool) -> Result:
    return run("directory", "add", "--request", request, *more, "--file", directory,
               "--anchor-key", anchor / "trust-anchor.key", ok=ok)  # fmt: skip


def test_directory_add_request_verifies_prints_and_lists_the_bureau(
    network: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    anchor, directory, _ = network
    keys, data = request_bytes()
    request = tmp_path / "PT.join.json"
    request.write_bytes(data)
    out = add_request(anchor, directory, request, ok=True).output.splitlines()
    expected_fp = read_join_request(request).fingerprint
    assert out == [
        f"join request {request}: proof verified with signing key {keys.signing_key_id}",
        "bureau   PT",
        "name     NCB Lisbon",
        "contact  ncb@example.pt, +351 000 000  (for you: not put in the directory)",
        "created  2026-03-01T12:00:00Z",
        f"fingerprint {expected_fp}  (compare with the requester's, out of band)",
        f"wrote {directory} serial 2 (was 1)",
    ]
    listed = Directory.load(directory, load_anchor_public_key(anchor / "trust-anchor.pub"))
    record = listed.bureau("PT")
    assert record.name == "NCB Lisbon"
    assert record.roles == ("member",)
    assert {k.kid for k in record.keys} == {keys.signing_key_id, keys.encryption_key_id}
    assert "example.pt" not in directory.read_text()  # the contact stays with the operator


def spoiled_request(tmp_path: Path, case: str) -> Path:
    _, data = request_bytes()
    doc = json.loads(data)
    if case == "proof":
        doc["join_request"]["contact"] = "someone else"
        spoiled = json.dumps(doc).encode()
    elif case == "taken":
        _, spoiled = request_bytes("FR")
    else:
        spoiled = data[: len(data) // 2]
    path = tmp_path / "XX.join.json"
    path.write_bytes(spoiled)
    return path


@pytest.mark.parametrize(
    ("case", "line"),
    [
        ("proof", "join request proof does not verify with its signing key"),
        ("taken", "bureau FR is already in directory serial 1"),
        ("malformed", "not a signed NBX join request"),
    ],
)
def test_directory_add_refuses_a_bad_request_in_one_line_and_leaves_the_file(
    network: tuple[Path, Path, Path], tmp_path: Path, case: str, line: str
) -> None:
    anchor, directory, _ = network
    before = directory.read_bytes()
    request = spoiled_request(tmp_path, case)
    result = add_request(anchor, directory, request, ok=False)
    assert result.exit_code == 1
    assert result.output == f"nbx: error: {request}: {line}\n"
    assert directory.read_bytes() == before


def test_directory_add_request_refuses_the_options_the_request_names(
    network: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    anchor, directory, _ = network
    before = directory.read_bytes()
    request = tmp_path / "PT.join.json"
    request.write_bytes(request_bytes()[1])
    result = add_request(anchor, directory, request, "--name", "X", ok=False)
    assert result.exit_code == 2
    assert result.output.startswith("nbx: error: ")
    assert "--request: not with --name (the request names them)" in result.output
    assert directory.read_bytes() == before
    # and without --request the usual three are needed
    result = run("directory", "add", "PT", "--file", directory,
                 "--anchor-key", anchor / "trust-anchor.key", ok=False)  # fmt: skip
    assert "give --keys, --name, or --request CC.join.json" in result.output
    assert directory.read_bytes() == before


def test_directory_add_request_gives_roles_and_creates_a_directory(tmp_path: Path) -> None:
    anchor = tmp_path / "anchor"
    run("keys", "init-anchor", anchor)
    request = tmp_path / "XR.join.json"
    request.write_bytes(request_bytes("XR", name="Review body")[1])
    directory = tmp_path / "directory.json"
    out = add_request(anchor, directory, request, "--role", "reviewer", ok=True).output
    assert f"wrote {directory} serial 1 (a new directory" in out
    listed = Directory.load(directory, load_anchor_public_key(anchor / "trust-anchor.pub"))
    assert listed.roles("XR") == {"member", "reviewer"}


def test_directory_add_request_checks_the_fingerprint_read_out(
    network: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    anchor, directory, _ = network
    before = directory.read_bytes()
    request = tmp_path / "PT.join.json"
    request.write_bytes(request_bytes()[1])
    real = read_join_request(request).fingerprint
    wrong = ("0000 " + real[5:]) if not real.startswith("0000") else ("1111 " + real[5:])
    result = add_request(anchor, directory, request, "--fingerprint", wrong, ok=False)
    assert result.output == (
        f"nbx: error: {request}: fingerprint {real} is not the one given ({wrong}): do not add "
        "this request\n"
    )
    assert directory.read_bytes() == before
    result = run("directory", "add", "FR", "--keys", tmp_path / "fr" / "FR.public.json",
                 "--name", "N", "--fingerprint", real, "--file", directory,
                 "--anchor-key", anchor / "trust-anchor.key", ok=False)  # fmt: skip
    assert "--fingerprint: only with --request" in result.output
    typed = real.replace(" ", "").upper()  # as a person may type it
    out = add_request(anchor, directory, request, "--fingerprint", typed, ok=True).output
    assert f"wrote {directory} serial 2 (was 1)" in out
