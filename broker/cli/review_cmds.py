"""``nbx review list|show|approve|refuse`` (reviewer nodes) and ``nbx oversight
block|unblock|delete`` (the oversight body's node): docs/safeguards.md."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from broker.cli.node_cmds import CONFIG, JSON_OUT, _config, _exit_for, _print_result, _recipients
from broker.errors import NbxError
from broker.vocab import ALL, Ground, MessageKind, NoticeState, Role


class Subject:
    """The message a reviewer or the oversight body decides on, as this node stored it."""

    def __init__(self, config: Any, notice_id: str, purpose: str = Role.REVIEWER.value) -> None:
        """Read ``notice_id``'s current version, statement hash and audience from the store
        (a consultation by this node's operator for ``purpose``: the review or oversight)."""
        from broker.sinks import open_sink
        from broker.sinks.audit import Access, default_operator

        sink = open_sink(config.sink.url, password_env=config.sink.password_env)
        try:
            access = Access(default_operator(config.audit.operator), purpose)
            row = sink.notice(notice_id, access)
            found = None if row is None else sink.statement(row["sender"], row["msg_id"])
            audience = None if row is None else sink.audience(row["sender"], row["msg_id"])
            rate = None if row is None else sink.refusal_rate(row["sender"])
        finally:
            sink.close()
        if row is None:
            msg = f"{notice_id}: no such notice in this node's store (nbx inbox list)"
            raise NbxError(msg)
        self.row = row
        self.statement_hash = None if found is None else found[1]
        self.audience = tuple(audience or ())
        #: the share of reviews of the sender's messages held here that refused them
        self.refusal_rate = rate

    @property
    def answer_to(self) -> list[str]:
        """Every recipient the sender addressed, and the sender."""
        return sorted({*self.audience, self.row["sender"]})


def _check_role(config: Any, role: Role) -> None:
    """Refuse, in one line, a command for ``role`` on a node the directory does not give it."""
    from broker.node.runtime import load_node

    node = load_node(config)
    roles = node.directory.roles(config.bureau)
    if role not in roles:
        held = ", ".join(sorted(roles)) or "none"
        msg = f"{config.bureau} is not a {role} in the directory (its roles: {held})"
        raise NbxError(msg)


def _send(config: Any, send: Callable[[Any], Awaitable[Any]], as_json: bool) -> None:
    from broker.node import Publisher

    async def run() -> Any:
        async with Publisher.from_config(config) as pub:
            return await send(pub)

    result = asyncio.run(run())
    _print_result(result, as_json)
    _exit_for(result)


# --- review ---------------------------------------------------------------------------------


@click.group("review")
def review() -> None:
    """Review person-targeting messages (reviewer nodes): list, show, approve, refuse."""


@review.command("list")
@CONFIG
@JSON_OUT
def review_list(config_path: Path, as_json: bool) -> None:
    """The notices in this node's store waiting for review (pending-review), newest first."""
    from broker.sinks import open_sink

    config = _config(config_path)
    _check_role(config, Role.REVIEWER)
    sink = open_sink(config.sink.url, password_env=config.sink.password_env)
    try:
        rows = [r for r in sink.notices() if r["state"] == NoticeState.PENDING_REVIEW]
    finally:
        sink.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("nothing waits for review")
    from broker.node.handling import evaluation

    for r in rows:
        graded = evaluation(r["source_reliability"], r["information_accuracy"])
        click.echo(
            f"{r['notice_id']}  {r['notice_type']}  from {r['sender']}  v{r['version']}  "
            f"{r['handling'] or '-'} {graded}"
        )


@review.command("show")
@CONFIG
@click.argument("notice_id")
@JSON_OUT
def review_show(config_path: Path, notice_id: str, as_json: bool) -> None:
    """NOTICE_ID's state, the statement an attestation binds to, its audience, and the screening
    flags (advice for the reviewer, never a decision). `nbx inbox show` prints the view."""
    from broker.node.runtime import load_node
    from broker.screening import Screener

    config = _config(config_path)
    _check_role(config, Role.REVIEWER)
    subject = Subject(config, notice_id)
    row = subject.row
    node = load_node(config)
    supervised = node.directory.rules().supervision_of(row["sender"]) == "pre"
    screener = Screener.from_settings(config.screening)
    flags = screener.screen(
        row["view"] or {},
        notice_type=row["notice_type"],
        sender=row["sender"],
        supervised=supervised,
        refusal_rate=subject.refusal_rate,
    )
    report = {
        "notice_id": row["notice_id"],
        "notice_type": row["notice_type"],
        "sender": row["sender"],
        "version": row["version"],
        "state": row["state"],
        "msg_id": row["msg_id"],
        "statement_hash": subject.statement_hash,
        "audience": list(subject.audience),
        "flags": [f.to_json() for f in flags],
        **_codes(row["view"]),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"{row['notice_id']} ({row['notice_type']}) from {row['sender']} v{row['version']}  "
        f"state: {row['state']}"
    )
    from broker.node.handling import code_lines

    for line in code_lines(row["view"], row["sender"]):
        click.echo(line)
    click.echo(f"statement: {subject.statement_hash}  audience: {', '.join(subject.audience)}")
    if not flags:
        click.echo("flags: none (no flag proves nothing)")
    for flag in flags:
        click.echo(f"flag {flag.code}: {flag.reason}")


def _codes(view: dict[str, Any] | None) -> dict[str, Any]:
    """The header's handling code and 4x4 evaluation (``None`` once purged), for ``--json``."""
    from broker.sinks.base import header_codes

    handling, reliability, accuracy = header_codes(view)
    return {
        "handling": handling,
        "source_reliability": reliability,
        "information_accuracy": accuracy,
    }


def _review(config_path: Path, notice_id: str, decision: str, grounds: tuple[str, ...],
            reason: str, as_json: bool) -> None:  # fmt: skip
    config = _config(config_path)
    _check_role(config, Role.REVIEWER)
    subject = Subject(config, notice_id)
    if subject.statement_hash is None or subject.row["view"] is None:
        msg = f"{notice_id}: {subject.row['state']} here, nothing to review"
        raise NbxError(msg)
    statement_hash = subject.statement_hash

    async def send(pub: Any) -> Any:
        result = await pub.review(
            subject_sender=subject.row["sender"],
            subject_msg_id=subject.row["msg_id"],
            notice_id=notice_id,
            notice_type=subject.row["notice_type"],
            statement_hash=statement_hash,
            decision=decision,
            grounds=grounds,
            reason=reason,
            to=subject.answer_to,
        )
        if result.failed:  # the attestation must be in every inbox before any held package
            return result
        if decision == "approved":  # packages held under heightened supervision go on now
            forwarded = await pub.forward_held(
                statement_hash,
                notice_id,
                msg_id=subject.row["msg_id"],
                notice_type=subject.row["notice_type"],
                kind=MessageKind.PUBLISH if subject.row["version"] == 1 else MessageKind.UPDATE,
            )
            for outcome in [] if as_json else forwarded:
                line = f"forwarded to {outcome.recipient}: {outcome.status}"
                click.echo(line + (f" ({outcome.reason})" if outcome.reason else ""))
        else:  # refused: the held packages never reach their recipients
            pub.store.drop_held(statement_hash)
        return result

    _send(config, send, as_json)


REASON = click.option("--reason", required=True, help="A short reason (no personal data).")


@review.command("approve")
@CONFIG
@click.argument("notice_id")
@REASON
@JSON_OUT
def review_approve(config_path: Path, notice_id: str, reason: str, as_json: bool) -> None:
    """Attest that NOTICE_ID's current version complies: every recipient the sender addressed
    (and the sender) may act on it."""
    _review(config_path, notice_id, "approved", (), reason, as_json)


@review.command("refuse")
@CONFIG
@click.argument("notice_id")
@click.option(
    "--ground",
    "grounds",
    multiple=True,
    required=True,
    type=click.Choice([g.value for g in Ground]),
    help="Why (repeatable): the rules' criteria, Art. 2, Art. 3, refugee protection, other.",
)
@REASON
@JSON_OUT
def review_refuse(
    config_path: Path, notice_id: str, grounds: tuple[str, ...], reason: str, as_json: bool
) -> None:
    """Refuse NOTICE_ID's current version: every recipient purges it and tells the sender."""
    _review(config_path, notice_id, "refused", grounds, reason, as_json)


# --- oversight ------------------------------------------------------------------------------


@click.group("oversight")
def oversight() -> None:
    """Decisions of the oversight body that every bureau obeys: block, unblock, delete."""


def _oversight_command(kind: str, help_text: str, *, needs_reason: bool) -> click.Command:
    @oversight.command(kind, help=help_text)
    @CONFIG
    @click.argument("notice_id")
    @click.option("--case", "case_ref", required=True, help="The case reference.")
    @click.option("--reason", required=needs_reason, default=None, help="Why (no personal data).")
    @click.option("--sender", default=None, help="The notice's sender, if not in this store.")
    @click.option("--notice-type", default=None, help="Its type, if not in this store.")
    @click.option("--to", "to", default=None, help="Recipients, if not in this store (FR,DE).")
    @JSON_OUT
    def command(
        config_path: Path,
        notice_id: str,
        case_ref: str,
        reason: str | None,
        sender: str | None,
        notice_type: str | None,
        to: str | None,
        as_json: bool,
    ) -> None:
        config = _config(config_path)
        _check_role(config, Role.OVERSIGHT)
        if sender and notice_type and to:
            recipients = _recipients(to)
            if recipients == ALL:
                msg = "--to: name the recipients (FR,DE,...)"
                raise NbxError(msg)
            answer_to = sorted({*recipients, sender.upper()})
            subject_sender, subject_type = sender.upper(), notice_type
        else:
            try:
                subject = Subject(config, notice_id, Role.OVERSIGHT.value)
            except NbxError:
                msg = (
                    f"{notice_id}: not in this node's store; give --sender, --notice-type and --to"
                )
                raise NbxError(msg) from None
            answer_to = subject.answer_to
            subject_sender, subject_type = subject.row["sender"], subject.row["notice_type"]

        async def send(pub: Any) -> Any:
            return await pub.oversight(
                kind,
                subject_sender=subject_sender,
                notice_id=notice_id,
                notice_type=subject_type,
                case_ref=case_ref,
                reason=reason,
                to=answer_to,
            )

        _send(config, send, as_json)

    return command


block = _oversight_command(
    "block",
    "Block NOTICE_ID while a challenge is pending: kept but not actionable anywhere.",
    needs_reason=True,
)
unblock = _oversight_command("unblock", "Lift the block of case --case.", needs_reason=False)
delete = _oversight_command(
    "delete", "Delete NOTICE_ID everywhere: purged like an erasure.", needs_reason=True
)


def register(group: click.Group) -> None:
    """Add this module's command groups to ``group``."""
    group.add_command(review)
    group.add_command(oversight)
