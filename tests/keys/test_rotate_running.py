"""A running publisher and daemon take up a signing-key rotation without a restart (in-memory
broker; the drill on the real broker is tests/node/test_rotation_drill.py): they sign with the old
key until the directory lists the new one, then messages, receipts and audit checkpoints carry the
new key id, and the daemon destroys the old key once the directory revoked it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker.envelope import VerifiedPackage
from broker.keys import Directory, files, sign_directory
from broker.keys.directory_edit import read_public_document, revoke_key, rotate_keys
from broker.keys.signing import rotate
from broker.node import Publisher
from broker.node.config import NodeConfig
from tests.node.helpers import example, memory_net, wait_for


def _fast(config: NodeConfig) -> NodeConfig:
    """Switch keys at once and check the directory file often (the test waits for both)."""
    return config.model_copy(
        update={
            "keys": config.keys.model_copy(update={"switch_after_s": 0.0}),
            "trust": config.trust.model_copy(update={"poll_interval_s": 0.1}),
        }
    )


def _serial(lookup: Any) -> int:
    current = getattr(lookup, "current", lookup)
    return 0 if current is None else int(current.serial)


def _anchor_edits(tmp_path: Path, edit: Any) -> None:
    """The anchor changes the directory file the nodes follow."""
    anchor = files.load_signing_key(tmp_path / "anchor" / "trust-anchor.key")
    path = tmp_path / "directory.json"
    body = Directory.load(path, anchor.public_key()).body
    path.write_bytes(sign_directory(edit(body), anchor))


async def test_a_running_node_switches_signing_keys_and_destroys_the_old_one(
    tmp_path: Path,
) -> None:
    """FR's publisher and daemon run throughout: before the anchor lists the new key FR still
    signs with the old one; after, FR's notice, FR's receipt to DE and FR's audit checkpoint
    carry the new key id and DE accepts them; once the old key is revoked FR's key care destroys
    it, and FR goes on signing with the new key."""
    net = memory_net(tmp_path, ["FR", "DE"])
    for cc in ("FR", "DE"):
        net.configs[cc] = _fast(net.configs[cc])
    kids: list[tuple[str, str]] = []
    de = net.daemon("DE")

    def seen(package: VerifiedPackage, _applied: object) -> None:
        kids.append((package.notice_id, package.sender_kid))

    de.on_delivered = seen
    fr = net.daemon("FR")
    folder = tmp_path / "FR" / "keys"
    await net.start("FR", "DE")
    try:
        async with net.publisher("FR") as pub, net.publisher("DE") as de_pub:
            old_kid = pub.keys.signing_key_id
            first = example("red", issuing_bureau="FR", notice_id="FR-2026-0001")
            assert (await pub.publish(first, ["DE"])).sent == ["DE"]
            step = rotate(folder, "FR", now=datetime.now(UTC))
            second = example("red", issuing_bureau="FR", notice_id="FR-2026-0002")
            assert (await pub.publish(second, ["DE"])).sent == ["DE"]  # not listed yet
            assert await wait_for(lambda: len(kids) == 2)
            assert kids == [("FR-2026-0001", old_kid), ("FR-2026-0002", old_kid)]

            before = _serial(pub.directory)
            doc = read_public_document(step.public)
            _anchor_edits(tmp_path, lambda b: rotate_keys(b, doc, now=datetime.now(UTC)))
            lookups = (pub.directory, de_pub.directory, fr.directory, de.directory)
            assert await wait_for(lambda: all(_serial(d) > before for d in lookups))
            third = example("red", issuing_bureau="FR", notice_id="FR-2026-0003")
            assert (await pub.publish(third, ["DE"])).sent == ["DE"]
            assert await wait_for(lambda: len(kids) == 3)
            assert kids[2] == ("FR-2026-0003", step.new_signing_kid)

            # DE -> FR: sealed to FR's new encryption key; FR's receipt signed with the new key
            assert await wait_for(lambda: fr.keys.signing_key_id == step.new_signing_kid)
            assert de_pub.directory.recipient_key("FR")[0] == step.encryption.new_kid
            blue = example("blue", issuing_bureau="DE", notice_id="DE-2026-0001")
            assert (await de_pub.publish(blue, ["FR"])).sent == ["FR"]
            assert await wait_for(lambda: _receipts(de_pub, "DE-2026-0001") == ["delivered"])
            checkpoint = fr.audit_checkpoint()
            assert checkpoint is not None
            assert checkpoint.kid == step.new_signing_kid

            now = datetime.now(UTC)
            _anchor_edits(
                tmp_path,
                lambda b: revoke_key(b, "FR", old_kid, at=now, reason="superseded", now=now),
            )
            assert await wait_for(lambda: _serial(fr.directory) == before + 2)
            fr.shred_keys()
            assert not (folder / "FR.signing.next.key").exists()
            assert files.load_signing_key(folder / "FR.signing.key").public_key() == (
                pub.keys.signing_key.public_key()
            )
            fourth = example("red", issuing_bureau="FR", notice_id="FR-2026-0004")
            assert (await pub.publish(fourth, ["DE"])).sent == ["DE"]
            assert await wait_for(lambda: len(kids) == 4)
            assert kids[3] == ("FR-2026-0004", step.new_signing_kid)
        assert de.stats.quarantined == fr.stats.quarantined == 0
    finally:
        await net.stop()


def _receipts(pub: Publisher, notice_id: str) -> list[str]:
    """The receipt statuses the sender's store holds for ``notice_id``."""
    assert pub.store is not None
    return [
        x["status"]
        for r in pub.store.status(notice_id)
        for m in r["messages"]
        for x in m["receipts"]
    ]
