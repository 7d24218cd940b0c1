"""``nbx audit verify`` and ``nbx audit export``: the node's audit log (docs/safeguards.md,
"Audit trail")."""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from broker.cli.node_cmds import CONFIG, JSON_OUT, _config
from broker.errors import NbxError


@click.group()
def audit() -> None:
    """The node's audit log: verify its chain and signed checkpoints, export it."""


class PublicKeys:
    """The bureau's public signing keys, by key id: its public key document in the key folder,
    then the signed directory file (verified with the pinned anchor) for older keys."""

    def __init__(self, config: Any) -> None:
        """Read what is there; nothing missing is an error until a checkpoint needs it."""
        from broker.keys.files import bureau_paths, load_anchor_public_key
        from broker.wire.canonical import b64u_decode

        self.bureau: str = config.bureau
        self.keys: dict[str, Any] = {}
        self.directory: Any = None
        _, _, public = bureau_paths(config.keys.dir, config.bureau)
        from cryptography.hazmat.primitives.asymmetric import ed25519

        try:
            document = json.loads(public.read_text())
            for entry in document.get("keys", []):
                if entry.get("use") == "sign":
                    raw = b64u_decode(entry["public"])
                    self.keys[entry["kid"]] = ed25519.Ed25519PublicKey.from_public_bytes(raw)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        from broker.keys.signing import read_history

        with contextlib.suppress(NbxError):  # every signing key held (nbx keys rotate)
            self.keys = read_history(config.keys.dir, config.bureau) | self.keys
        if config.trust.directory != "topic":
            from broker.errors import KeyDirectoryError
            from broker.keys import Directory

            try:
                anchor = load_anchor_public_key(config.trust.anchor)
                data = Path(config.trust.directory).read_bytes()
                self.directory = Directory.from_signed(data, anchor)
            except (OSError, KeyDirectoryError, NbxError):
                self.directory = None

    def __call__(self, checkpoint: Any) -> Any:
        """The key ``checkpoint`` must verify with (``None``: unknown)."""
        if checkpoint.bureau != self.bureau:
            return None
        key = self.keys.get(checkpoint.kid)
        if key is not None or self.directory is None:
            return key
        from broker.errors import EnvelopeRejected

        try:
            at = datetime.fromisoformat(checkpoint.at)
            return self.directory.signing_key(self.bureau, checkpoint.kid, at)
        except (EnvelopeRejected, ValueError):
            return None


@audit.command("verify")
@CONFIG
@JSON_OUT
def audit_verify(config_path: Path, as_json: bool) -> None:
    """Check the audit log: every entry's hash, the chain (prev), the seq order, and every signed
    checkpoint (signature, and that the log still holds what it covered). Exit 1 with one line
    naming the first bad seq; entries cut from the tail after the last checkpoint are not
    detectable (the next checkpoint covers them)."""
    from broker.sinks import open_sink
    from broker.sinks.audit import verify

    config = _config(config_path)
    keys = PublicKeys(config)
    sink = open_sink(config.sink.url, password_env=config.sink.password_env, durable=False)
    try:
        entries = sink.audit_entries()
        checkpoints = sink.checkpoints()
    finally:
        sink.close()
    problem = verify(entries, checkpoints, keys)
    last = checkpoints[-1] if checkpoints else None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": problem is None,
                    "problem": problem,
                    "entries": len(entries),
                    "checkpoints": len(checkpoints),
                    "last_checkpoint": None
                    if last is None
                    else {"count": last.count, "at": last.at, "head": last.head},
                },
                indent=2,
            )
        )
    elif problem is None:
        covered = "no checkpoint yet" if last is None else f"last checkpoint {last.at}"
        after = 0 if last is None else len(entries) - last.count
        click.echo(
            f"audit log intact: {len(entries)} entries, {len(checkpoints)} signed checkpoints "
            f"({covered}; {after} entries after it)"
        )
    if problem is not None:
        if not as_json:
            click.echo(f"nbx: error: {problem}", err=True)
        sys.exit(1)


def _time(value: str | None, option: str) -> str | None:
    """``value`` (a date or an ISO 8601 time; UTC unless it says otherwise) in the store's time
    format, for comparing with an entry's ``at``."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{option}: expected a date or an ISO 8601 time, got {value!r}"
        raise NbxError(msg) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


@audit.command("export")
@CONFIG
@click.option("--since", default=None, help="From this date or time (UTC unless given).")
@click.option("--until", default=None, help="Before this date or time (UTC unless given).")
@JSON_OUT
def audit_export(config_path: Path, since: str | None, until: str | None, as_json: bool) -> None:
    """The audit log's entries from --since to before --until, for the data-protection officer:
    ids, codes, operators, purposes and times (no personal data)."""
    from broker.sinks import open_sink
    from broker.sinks.audit import entry_json

    config = _config(config_path)
    start, end = _time(since, "--since"), _time(until, "--until")
    sink = open_sink(config.sink.url, password_env=config.sink.password_env, durable=False)
    try:
        entries = sink.audit_entries(start, end)
    finally:
        sink.close()
    if as_json:
        click.echo(json.dumps([entry_json(e) for e in entries], indent=2))
        return
    for e in entries:
        parts = [
            f"{e.seq:>6}",
            e.at,
            f"{e.action:12}",
            e.notice_id or "-",
            f"kind={e.kind}" if e.kind else "",
            f"sender={e.sender}" if e.sender else "",
            f"bureaus={','.join(e.bureaus)}" if e.bureaus else "",
            f"outcome={e.outcome}" if e.outcome else "",
            f"reason={e.reason}" if e.reason else "",
            f"operator={e.operator}" if e.operator else "",
            f"purpose={e.purpose!r}" if e.purpose else "",
            f"msg={e.msg_id}" if e.msg_id else "",
        ]
        click.echo(" ".join(p for p in parts if p))


def register(group: click.Group) -> None:
    """Add ``nbx audit`` to ``group``."""
    group.add_command(audit)
