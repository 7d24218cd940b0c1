"""The post-quantum suite on the real broker: the suite follows the recipient's published key.

Bureaus migrate with the documented CLI steps. A bureau with only an ML-KEM-768+X25519 key is sent
to (suite 2 on the wire) and answers with a receipt; a bureau migrating (X25519 and a newer hybrid
key) gets suite 2 and still opens suite 1 from a lagging sender; a node with ``[security]
min_suite = 2`` quarantines a suite-1 package as ``suite-too-weak``. Hybrid key files are 0600,
and a readable one or a wrong passphrase stops the node with one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from broker import devbroker
from broker.cli import main
from broker.errors import ConfigError, KeyDirectoryError
from broker.keys import BureauKeys
from broker.keys.files import PASSPHRASE_ENV, load_hybrid_key, write_bureau_keys
from broker.keys.hybrid import HybridEncryptionKey
from broker.node import Publisher
from broker.node.config import NodeConfig
from broker.node.runtime import load_node
from broker.wire import frame
from broker.wire.suites import SUITE_MLKEM768_X25519, SUITE_X25519
from tests.audit_access import READ
from tests.node.helpers import Net, example, read_topic, wait_for

pytestmark = pytest.mark.e2e


def _migrate(folder: Path, cc: str, *, retire_x25519: bool) -> HybridEncryptionKey:
    """Provisioned bureau ``cc`` follows docs/security/post-quantum.md with the CLI: ``nbx keys
    add-pq``, ``nbx directory add-key`` (the hybrid key becomes the newest); with
    ``retire_x25519`` also ``nbx directory revoke`` of the X25519 key and removal of its file."""
    keys_dir, directory = folder / cc / "keys", folder / "directory.json"
    anchor_key = folder / "anchor" / "trust-anchor.key"

    def nbx(*args: object) -> str:
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.output

    nbx("keys", "add-pq", cc, "--dir", keys_dir)
    public = keys_dir / f"{cc}.hybrid.public.json"
    nbx(
        "directory",
        "add-key",
        cc,
        "--keys",
        public,
        "--file",
        directory,
        "--anchor-key",
        anchor_key,
    )
    if retire_x25519:
        x25519_kid = next(
            k["kid"]
            for k in json.loads((keys_dir / f"{cc}.public.json").read_text())["keys"]
            if k["alg"] == "X25519"
        )
        nbx(
            "directory",
            "revoke",
            cc,
            "--kid",
            x25519_kid,
            "--reason",
            "superseded",
            "--file",
            directory,
            "--anchor-key",
            anchor_key,
        )
        (keys_dir / f"{cc}.encryption.key").unlink()
    hybrid = load_hybrid_key(keys_dir / f"{cc}.hybrid.key")
    assert json.loads(public.read_text())["keys"][0]["kid"] == hybrid.key_id
    return hybrid


class _Lagging:
    """A sender's key lookup from before suite 2: always the recipient's X25519 key."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def recipient_key(self, bureau: str) -> Any:
        return self.inner.encryption_key(bureau)


def _receipts(net: Net, cc: str, notice_id: str) -> dict[str, list[str]]:
    return {
        r["recipient"]: [x["status"] for m in r["messages"] for x in m["receipts"]]
        for r in net.daemon(cc).sink.status(notice_id)
    }


def _suites(records: list[tuple[bytes, bytes, dict[str, bytes]]]) -> list[int]:
    return [frame.decode(value).suite for _, value, _ in records]


async def test_the_suite_follows_the_recipients_published_key(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """FR finished its migration (only a hybrid key: X25519 revoked, its file gone), DE is in the
    middle (an X25519 key and a newer hybrid key), IT has only X25519.
    IT's notice reaches FR and DE as suite 2 and both answer with a delivered receipt (suite 1 to
    IT); FR's notice to IT goes as suite 1 and IT's receipt back to FR as suite 2; a lagging sender
    that still encrypts to DE's X25519 key is delivered too (DE holds both private keys)."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "FR", "DE"), bootstrap, idempotence=idempotence_supported)
    fr_key = _migrate(tmp_path, "FR", retire_x25519=True)
    de_key = _migrate(tmp_path, "DE", retire_x25519=False)
    assert set(load_node(net.configs["DE"]).decryption_keys) >= {de_key.key_id}
    assert len(load_node(net.configs["DE"]).decryption_keys) == 2
    await net.start("IT", "FR", "DE")
    try:
        notice = example("red", notice_id="IT-2026-0001")
        result = await net.publish("IT", notice, ["FR", "DE"])
        assert sorted(o.recipient for o in result.outcomes if o.status == "sent") == ["DE", "FR"]
        for cc, key in (("FR", fr_key), ("DE", de_key)):
            [(_, value, headers)] = await read_topic(bootstrap, f"nbx.inbox.{cc}", expect=1)
            parsed = frame.decode(value)
            assert (parsed.suite, parsed.recipient_kid) == (SUITE_MLKEM768_X25519, key.key_id)
            assert value[5] == SUITE_MLKEM768_X25519  # the frame's suite byte itself
            assert headers["nbx-kid"] == key.key_id.encode()
        assert await wait_for(
            lambda: (
                _receipts(net, "IT", notice.notice_id) == {"FR": ["delivered"], "DE": ["delivered"]}
            )
        )
        assert (
            _suites(await read_topic(bootstrap, "nbx.receipts.IT", expect=2)) == [SUITE_X25519] * 2
        )

        reply = example("red", issuing_bureau="FR", notice_id="FR-2026-0001")
        result = await net.publish("FR", reply, ["IT"])
        assert [o.status for o in result.outcomes] == ["sent"]
        assert await wait_for(
            lambda: _receipts(net, "FR", reply.notice_id) == {"IT": ["delivered"]}
        )
        assert _suites(await read_topic(bootstrap, "nbx.inbox.IT", expect=1)) == [SUITE_X25519]
        [(_, value, _)] = await read_topic(bootstrap, "nbx.receipts.FR", expect=1)
        assert frame.decode(value).suite == SUITE_MLKEM768_X25519
        assert frame.decode(value).recipient_kid == fr_key.key_id

        lagging = Publisher.from_config(net.configs["IT"])
        lagging.directory = _Lagging(lagging.directory)
        old = example("red", notice_id="IT-2026-0002")
        async with lagging as pub:
            result = await pub.publish(old, ["DE"])
        assert [o.status for o in result.outcomes] == ["sent"]
        assert await wait_for(lambda: net.daemon("DE").stats.delivered == 2)
        suites = _suites(await read_topic(bootstrap, "nbx.inbox.DE", expect=2))
        assert suites == [SUITE_MLKEM768_X25519, SUITE_X25519]
        for cc in ("IT", "FR", "DE"):
            assert net.daemon(cc).stats.quarantined == 0, net.daemon(cc).stats.reasons
    finally:
        await net.stop()


async def test_min_suite_2_quarantines_a_lagging_senders_package(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """DE requires suite 2: a notice IT's lagging software encrypts to DE's X25519 key is
    quarantined as ``suite-too-weak`` (the raw record in nbx.quarantine.DE, nothing stored) while
    a current sender's suite-2 notice is delivered."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "DE"), bootstrap, idempotence=idempotence_supported)
    _migrate(tmp_path, "DE", retire_x25519=False)
    path = net.paths["DE"]
    path.write_text(path.read_text() + "\n[security]\nmin_suite = 2\n")
    net.configs["DE"] = NodeConfig.load(path)
    assert net.configs["DE"].security.min_suite == SUITE_MLKEM768_X25519
    lagging = Publisher.from_config(net.configs["IT"])
    lagging.directory = _Lagging(lagging.directory)
    weak = example("red", notice_id="IT-2026-0001")
    async with lagging as pub:
        assert [o.status for o in (await pub.publish(weak, ["DE"])).outcomes] == ["sent"]
    strong = example("red", notice_id="IT-2026-0002")
    assert [o.status for o in (await net.publish("IT", strong, ["DE"])).outcomes] == ["sent"]
    await net.start("DE")
    try:
        de = net.daemon("DE")
        assert await wait_for(lambda: de.stats.delivered + de.stats.quarantined == 2)
        assert (de.stats.delivered, de.stats.reasons) == (1, {"suite-too-weak": 1})
        assert de.sink.notice(weak.notice_id, READ) is None
        assert de.sink.notice(strong.notice_id, READ) is not None
        inbox = await read_topic(bootstrap, "nbx.inbox.DE", expect=2)
        quarantined = await read_topic(bootstrap, "nbx.quarantine.DE", expect=1)
        assert [value for _, value, _ in quarantined] == [inbox[0][1]]
        assert frame.decode(quarantined[0][1]).suite == SUITE_X25519
    finally:
        await net.stop()


def test_min_suite_2_without_a_hybrid_key_is_a_config_error(tmp_path: Path) -> None:
    """A node cannot require suite 2 while it holds no hybrid key to open it with."""
    net = Net(tmp_path, ("IT",), "127.0.0.1:9", idempotence=False)
    path = net.paths["IT"]
    path.write_text(path.read_text() + "\n[security]\nmin_suite = 2\n")
    with pytest.raises(ConfigError, match=r"min_suite = 2 needs a hybrid encryption key") as info:
        load_node(NodeConfig.load(path))
    assert "\n" not in str(info.value)


def test_node_refuses_a_readable_or_wrongly_unlocked_hybrid_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node loads the hybrid key file (0600); mode 0644 or a wrong NBX_KEY_PASSPHRASE stops
    it with one line naming the file."""
    import stat

    net = Net(tmp_path, ("FR", "ES"), "127.0.0.1:9", idempotence=False)
    fr_key = _migrate(tmp_path, "FR", retire_x25519=True)
    fr_file = tmp_path / "FR" / "keys" / "FR.hybrid.key"
    assert stat.S_IMODE(fr_file.stat().st_mode) == 0o600
    [fr_kid] = load_node(net.configs["FR"]).decryption_keys
    assert fr_kid == fr_key.key_id
    fr_file.chmod(0o644)
    with pytest.raises(KeyDirectoryError) as info:
        load_node(net.configs["FR"])
    assert str(info.value) == (
        f"{fr_file}: private key is accessible by group or others (mode 0644); "
        f"run: chmod 600 {fr_file}"
    )

    es_dir = tmp_path / "ES" / "keys"
    for old in es_dir.iterdir():
        old.unlink()
    es = BureauKeys.generate("ES", pq=True)
    assert es.hybrid_key is not None
    write_bureau_keys(es_dir, es, b"right")
    monkeypatch.setenv(PASSPHRASE_ENV, "right")
    assert list(load_node(net.configs["ES"]).decryption_keys) == [es.hybrid_key.key_id]
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(KeyDirectoryError) as info:
        load_node(net.configs["ES"])
    assert str(info.value) == (
        f"{es_dir / 'ES.signing.key'}: not a PEM private key, or wrong passphrase in "
        f"{PASSPHRASE_ENV}"
    )
