"""The key-rotation drill (issue 21, point 3) on the real broker: FR rotates its signing and
encryption keys while notices flow FR -> DE and DE -> FR, then the anchor revokes FR's old signing
key; nothing is lost, duplicated or quarantined, and each sender's status shows every delivery
(docs/security/key-rotation.md).

Every step waits for a condition (counts reached, serials installed, receipts stored); the two
streams only pace themselves so that the run stays small.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from broker.cli import keys_cmds, main, rotate_cmds
from broker.envelope import VerifiedPackage
from broker.keys import Directory, files
from broker.keys.epochs import load_keys
from broker.node import Publisher, PublishResult
from broker.node.config import NodeConfig
from broker.sinks import open_sink
from broker.sinks.base import Applied
from tests.node.helpers import Net, example, wait_for

pytestmark = pytest.mark.e2e

#: ``[keys] switch_after_s`` of the drill's nodes: FR signs with its new key this long after its
#: own directory listed it; every other node's directory (followed on the topic) has it by then
SWITCH_AFTER_S = 5.0
#: the streams' pace (a publish, then this pause): only keeps the number of notices small
PACE_S = 0.05
#: a wait for a condition that does not come within this long fails the drill
PATIENCE_S = 90.0


def _drill(config: NodeConfig) -> NodeConfig:
    """A node following ``nbx.directory`` that switches signing keys SWITCH_AFTER_S after its
    directory lists the new one."""
    return config.model_copy(
        update={
            "keys": config.keys.model_copy(update={"switch_after_s": SWITCH_AFTER_S}),
            "trust": config.trust.model_copy(update={"directory": "topic"}),
        }
    )


@dataclass
class Stream:
    """Notices from ``sender`` to ``to``, one after the other until stopped, each result kept."""

    sender: str
    to: str
    pub: Publisher
    sent: list[PublishResult] = field(default_factory=list)
    #: the encryption key id the sender's directory gave for ``to`` just before each publish
    sealed_to: list[str] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; every publish must reach ``to``."""
        while not stop.is_set():
            n = len(self.sent) + 1
            notice = example(
                "red", issuing_bureau=self.sender, notice_id=f"{self.sender}-2026-{n:04d}"
            )
            self.sealed_to.append(self.pub.directory.recipient_key(self.to)[0])
            result = await self.pub.publish(notice, [self.to])
            assert result.sent == [self.to], result.to_json()
            self.sent.append(result)
            await asyncio.sleep(PACE_S)


def _delivered(pub: Publisher, result: PublishResult) -> bool:
    """Whether the sender's status shows a ``delivered`` receipt for ``result``'s message."""
    assert pub.store is not None
    return any(
        x["status"] == "delivered"
        for r in pub.store.status(result.notice_id)
        for m in r["messages"]
        if m["msg_id"] == result.msg_id
        for x in m["receipts"]
    )


def _serial(lookup: Any) -> int:
    current = getattr(lookup, "current", lookup)
    return 0 if current is None else int(current.serial)


async def _until(check: Any, what: str) -> None:
    assert await wait_for(check, timeout_s=PATIENCE_S), f"not reached: {what}"


async def _cli(command: Any, *args: Any) -> None:
    """An ``nbx`` command's own code, in a thread (a command may run its own event loop)."""
    callback = command.callback
    assert callback is not None
    await asyncio.to_thread(callback, *args)


async def test_key_rotation_drill_under_traffic(
    kafka_bootstrap: str, idempotence_supported: bool, tmp_path: Path
) -> None:
    """FR and DE run daemons and publishers and send each other notices continuously. Midway FR
    runs ``nbx keys rotate``; the anchor runs ``nbx directory rotate FR`` and publishes; FR's
    running node switches to the new signing key (DE's directory lists it by then), DE switches
    to FR's new encryption key; packages signed with FR's old key or sealed to its old
    encryption key across the switch are delivered. Once FR's status shows every message
    signed with the old key delivered, the anchor revokes that key and publishes, FR's node
    destroys it (``nbx keys shred``), and traffic goes on. Then a package signed with the old
    key is quarantined ``key-revoked``; every other notice was delivered exactly once, nothing
    else was quarantined, and both senders' status shows every delivery."""
    net = Net(tmp_path, ["FR", "DE"], kafka_bootstrap, idempotence=idempotence_supported)
    for cc in ("FR", "DE"):
        net.configs[cc] = _drill(net.configs[cc])
    directory = tmp_path / "directory.json"
    anchor_key = tmp_path / "anchor" / "trust-anchor.key"
    anchor_pub = tmp_path / "anchor" / "trust-anchor.pub"
    await net.ensure_topics("FR", "DE")
    await _cli(keys_cmds.publish, directory, anchor_pub, kafka_bootstrap)

    stored: dict[str, Counter[tuple[str, Applied]]] = {"FR": Counter(), "DE": Counter()}
    signed_by: dict[str, str] = {}  # FR's notice id -> the key id DE verified it with
    fr, de = net.daemon("FR"), net.daemon("DE")

    def at(cc: str) -> Any:
        def seen(package: VerifiedPackage, outcome: Applied) -> None:
            stored[cc][(package.notice_id, outcome)] += 1
            if cc == "DE":
                signed_by[package.notice_id] = package.sender_kid

        return seen

    fr.on_delivered, de.on_delivered = at("FR"), at("DE")
    folder = tmp_path / "FR" / "keys"
    old = load_keys(folder, "FR")  # FR's keys before the drill (the test seals with them later)
    await net.start("FR", "DE")
    try:
        async with net.publisher("FR") as fr_pub, net.publisher("DE") as de_pub:
            to_de, to_fr = Stream("FR", "DE", fr_pub), Stream("DE", "FR", de_pub)

            def both(n: int) -> bool:
                return len(to_de.sent) >= n and len(to_fr.sent) >= n

            stop = asyncio.Event()
            streams = [asyncio.create_task(s.run(stop)) for s in (to_de, to_fr)]
            try:
                await _until(lambda: both(10), "10 notices each way")

                # 1. FR rotates on its running node: the directory does not list the keys yet
                await _cli(rotate_cmds.rotate, "FR", folder)
                doc = json.loads((folder / "FR.next.public.json").read_text())
                new_sign, new_enc = (k["kid"] for k in doc["keys"])
                mark = max(len(to_de.sent), len(to_fr.sent))
                await _until(lambda: both(mark + 5), "5 more each way after nbx keys rotate")
                before_switch = fr.audit_checkpoint()  # signed with the old key
                assert before_switch is not None
                assert before_switch.kid == old.signing_key_id

                # 2. the anchor rotates FR's keys and publishes
                serial = _serial(de.directory)
                await _cli(
                    keys_cmds.rotate, "FR", folder / "FR.next.public.json", "7d", directory,
                    anchor_key,
                )  # fmt: skip
                await _cli(keys_cmds.publish, directory, anchor_pub, kafka_bootstrap)

                # 3. FR's node switches; DE encrypts to FR's new key
                await _until(
                    lambda: to_de.sent[-1].kid == new_sign and fr.keys.signing_key_id == new_sign,
                    "FR's publisher and daemon sign with the new key",
                )
                switched = len(to_de.sent)
                await _until(
                    lambda: (
                        len(to_de.sent) >= switched + 5 and to_fr.sealed_to[-5:] == [new_enc] * 5
                    ),
                    "5 notices each way with FR's new keys",
                )

                # 4. every message signed with FR's old key delivered (FR's status), and every
                # receipt FR's daemon signed with it (DE's status of what it sent so far)
                old_signed = [r for r in to_de.sent if r.kid == old.signing_key_id]
                answered = list(to_fr.sent)
                await _until(
                    lambda: (
                        all(_delivered(fr_pub, r) for r in old_signed)
                        and all(_delivered(de_pub, r) for r in answered)
                    ),
                    "FR's status shows every message signed with the old key delivered",
                )

                # 5. the anchor revokes the old signing key and publishes; FR's node destroys it
                await _cli(
                    keys_cmds.revoke, "FR", old.signing_key_id, "now", "superseded", directory,
                    anchor_key,
                )  # fmt: skip
                await _cli(keys_cmds.publish, directory, anchor_pub, kafka_bootstrap)
                revoked = serial + 2
                lookups = (fr.directory, de.directory, fr_pub.directory, de_pub.directory)
                await _until(
                    lambda: all(_serial(d) == revoked for d in lookups),
                    "every node holds the revocation",
                )
                await _cli(keys_cmds.shred, net.paths["FR"])
                assert not (folder / "FR.signing.next.key").exists()
                assert list(load_keys(folder, "FR").signing_keys()) == [new_sign]
                mark = max(len(to_de.sent), len(to_fr.sent))
                await _until(lambda: both(mark + 5), "5 more each way after the revocation")
            finally:
                stop.set()
                await asyncio.gather(*streams)

            # 6. a package signed with the old key after its revocation
            forged = Publisher(
                old,
                Directory.load(directory, files.load_anchor_public_key(anchor_pub)),
                net.configs["FR"].kafka_settings(),
                policies=fr_pub.policies,
            )
            async with forged:
                late = example("red", issuing_bureau="FR", notice_id="FR-2026-9999")
                assert (await forged.publish(late, ["DE"])).sent == ["DE"]
            await _until(lambda: de.stats.quarantined == 1, "DE quarantines the late package")
            assert de.stats.reasons == {"key-revoked": 1}

            # 7. every notice delivered exactly once, and both senders' status shows it
            await _until(
                lambda: (
                    all(_delivered(fr_pub, r) for r in to_de.sent)
                    and all(_delivered(de_pub, r) for r in to_fr.sent)
                ),
                "both senders' status shows every delivery",
            )
        for stream, cc in ((to_de, "DE"), (to_fr, "FR")):
            ids = [r.notice_id for r in stream.sent]
            assert len(set(ids)) == len(ids)
            counted = {nid: n for (nid, o), n in stored[cc].items() if o == Applied.DELIVERED}
            assert counted == dict.fromkeys(ids, 1)
            held = [row for row in net.daemon(cc).sink.notices() if row["sender"] == stream.sender]
            assert sorted(row["notice_id"] for row in held) == sorted(ids)
        assert fr.stats.quarantined == 0
        assert de.stats.quarantined == 1  # the late package only

        # the switch: old key, then the new key only, in FR's publishing order
        kids = [signed_by[r.notice_id] for r in to_de.sent]
        assert kids == [r.kid for r in to_de.sent]
        first_new = kids.index(new_sign)
        assert first_new >= 15  # 10, then 5 after nbx keys rotate, all signed with the old key
        assert set(kids[:first_new]) == {old.signing_key_id}
        assert set(kids[first_new:]) == {new_sign}
        # DE sealed to FR's old encryption key after FR had moved it to its epochs file, then
        # to the new one: both delivered
        assert {old.encryption_key_id, new_enc} <= set(to_fr.sealed_to)
        # FR's audit log verifies with checkpoints of both keys (the last one, signed on the
        # clean stop, with the new key)
        await net.stop()
        audit = CliRunner().invoke(
            main, ["audit", "verify", "--config", str(net.paths["FR"]), "--json"]
        )
        assert audit.exit_code == 0, audit.output
        assert json.loads(audit.output)["ok"] is True
        store = open_sink(net.configs["FR"].sink.url, durable=False)
        try:
            signed_with = [c.kid for c in store.checkpoints()]
        finally:
            store.close()
        assert signed_with[0] == old.signing_key_id
        assert signed_with[-1] == new_sign
        print(
            f"\ndrill: FR->DE {len(to_de.sent)} ({first_new} with the old signing key), "
            f"DE->FR {len(to_fr.sent)} ({to_fr.sealed_to.count(old.encryption_key_id)} sealed "
            "to FR's old encryption key)"
        )
    finally:
        await net.stop()
