"""The commands a bureau runs: ``node init``, ``publish``, ``update``, ``suspend``, ``cancel``,
``consume``, ``inbox list|show|export`` and ``status``."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from broker.errors import NbxError, SchemaError
from broker.ids import is_bureau_id
from broker.vocab import ALL, LifecycleKind, MessageKind, NoticeState, ReceiptStatus, SendStatus

CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help="The node's TOML configuration file.",
)
JSON_OUT = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def _config(path: Path) -> Any:
    from broker.node.config import NodeConfig

    return NodeConfig.load(path)


def _recipients(value: str) -> list[str] | str:
    if value.strip().lower() == ALL:
        return ALL
    out = [p.strip().upper() for p in value.split(",") if p.strip()]
    bad = [p for p in out if not is_bureau_id(p)]
    if bad or not out:
        msg = f"--to: expected 'all' or country codes like FR,DE; got {value!r}"
        raise click.BadParameter(msg)
    return out


def _order_recipients(pub: Any, notice_id: str, to: str | None) -> list[str]:
    """Whom a lifecycle order goes to: ``--to`` (``all`` resolved), else every bureau the
    notice was sent to; none known is an error."""
    recipients = _recipients(to) if to else pub.recipients_of(notice_id)
    if recipients == ALL:
        recipients = pub.resolve_recipients(ALL)
    if not recipients:
        msg = f"{notice_id}: no recipients known; give --to"
        raise NbxError(msg)
    return list(recipients)


def _print_result(result: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    click.echo(f"{result.kind} {result.notice_id} msg {result.msg_id or '-'}")
    for o in result.outcomes:
        sent = o.status == SendStatus.SENT
        detail = f"{o.disclosed} disclosed, {o.withheld} withheld" if sent else ""
        click.echo(f"  {o.recipient:3} {o.status:9} {o.reason or detail}")


def _exit_for(result: Any) -> None:
    if result.failed:
        sys.exit(2)


class _NodeGroup(click.Group):
    """``nbx node``: ``join`` (broker/cli/join_cmds.py) is imported only when it runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every subcommand, ``join`` included."""
        return sorted({*super().list_commands(ctx), "join"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The subcommand ``cmd_name``, importing ``join`` the first time."""
        if cmd_name == "join" and cmd_name not in self.commands:
            importlib.import_module("broker.cli.join_cmds").register(self)
        return super().get_command(ctx, cmd_name)


@click.group("node", cls=_NodeGroup)
def node() -> None:
    """Set up a bureau node."""


@node.command("init")
@click.argument("bureaus", metavar="BUREAU...", nargs=-1, required=True)
@click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path),
    default=Path("nbx-node"),
    show_default=True,
    help="Folder to create (must not exist).",
)
@click.option("--bootstrap", default="127.0.0.1:9092", show_default=True, help="Kafka host:port.")
@click.option(
    "--policies",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Policy folder to copy (default: the bundled example policies).",
)
@click.option(
    "--dev-broker",
    "dev_broker",
    type=click.Choice(["noida", "tansu"]),
    default=None,
    help="Configure the nodes for this embedded development broker (`nbx dev-broker --impl`): "
    "idle-fetch pacing for noida-db; for tansu no LogAppendTime check and no idempotent "
    "producer. Default: Apache Kafka.",
)
def node_init(
    bureaus: tuple[str, ...],
    folder: Path,
    bootstrap: str,
    policies: Path | None,
    dev_broker: str | None,
) -> None:
    """Write a working example network: one trust anchor, a signed directory listing every
    BUREAU, and for each its keys and node.toml (``nbx node init IT FR --dir net``)."""
    from broker.examples import policies_dir as example_policies_dir
    from broker.ids import bureau_id
    from broker.node.provision import provision

    ids = [b.upper() for b in bureaus]
    for cc in ids:
        try:
            bureau_id(cc)
        except ValueError as exc:
            raise NbxError(str(exc)) from None
    repeated = sorted({b for b in ids if ids.count(b) > 1})
    if repeated:
        msg = f"bureau {', '.join(repeated)} given twice"
        raise NbxError(msg)
    if folder.exists() and any(folder.iterdir()):
        msg = f"{folder}: already exists and is not empty"
        raise NbxError(msg)
    from broker import devbroker

    configs = provision(
        folder,
        ids,
        bootstrap=bootstrap,
        policies=policies or example_policies_dir(),
        require_log_append_time=dev_broker is None or devbroker.STAMPS_LOG_APPEND_TIME[dev_broker],
        pace_empty_fetches=dev_broker is not None and devbroker.NEEDS_FETCH_PACING[dev_broker],
        enable_idempotence=dev_broker is None or devbroker.IDEMPOTENT_PRODUCER[dev_broker],
    )
    for cc in ids:
        click.echo(f"wrote {configs[cc]}")
    for cc in ids:
        click.echo(f"start the daemon: nbx consume --config {configs[cc]}")


@click.command("publish")
@CONFIG
@click.argument("notice_file", type=click.Path(path_type=Path))
@click.option("--to", "to", default=ALL, show_default=True, help="'all' or FR,DE,...")
@click.option("--only", default=None, help="Sender restriction: only these countries (FR,DE).")
@click.option("--exclude", default=None, help="Sender restriction: never these countries.")
@JSON_OUT
def publish(
    config_path: Path,
    notice_file: Path,
    to: str,
    only: str | None,
    exclude: str | None,
    as_json: bool,
) -> None:
    """Publish (or, for version > 1, update) the notice in NOTICE_FILE.

    Exit code 0 when every recipient got it, 2 when some failed (listed), 1 on an error.
    """
    from broker.node import Publisher
    from broker.policy import SenderRestrictions
    from broker.schemas import parse_notice

    config = _config(config_path)
    try:
        raw = notice_file.read_bytes()
    except FileNotFoundError:
        msg = f"{notice_file}: notice file not found"
        raise NbxError(msg) from None
    try:
        notice = parse_notice(raw)
    except SchemaError as exc:
        problems = str(exc).splitlines()
        msg = (
            f"{notice_file}: invalid notice ({len(problems)} problem(s); "
            f"`nbx validate` lists them all): {problems[0] if problems else exc}"
        )
        raise NbxError(msg) from None
    recipients = _recipients(to)
    restrictions = None
    if only or exclude:
        restrictions = SenderRestrictions(
            only=frozenset(_recipients(only)) if only else None,
            exclude=frozenset(_recipients(exclude)) if exclude else frozenset(),
        )

    async def run() -> Any:
        async with Publisher.from_config(config) as pub:
            return await pub.publish(notice, recipients, restrictions=restrictions)

    result = asyncio.run(run())
    _print_result(result, as_json)
    _exit_for(result)


def _lifecycle_command(kind: LifecycleKind, help_text: str) -> click.Command:
    @click.command(kind, help=help_text)
    @CONFIG
    @click.argument("notice_id")
    @click.option("--reason", required=True, help="Why (sent to recipients; no personal data).")
    @click.option("--notice-type", default="red", show_default=True, help="The notice's type.")
    @click.option("--to", "to", default=None, help="Recipients (default: every bureau it went to).")
    @click.option("--withdraw", is_flag=True, help="(cancel) the issuing bureau withdraws it.")
    @JSON_OUT
    def command(
        config_path: Path,
        notice_id: str,
        reason: str,
        notice_type: str,
        to: str | None,
        withdraw: bool,
        as_json: bool,
    ) -> None:
        from broker.node import Publisher

        config = _config(config_path)

        async def run() -> Any:
            async with Publisher.from_config(config) as pub:
                recipients = _order_recipients(pub, notice_id, to)
                details: dict[str, Any] = {"notice_id": notice_id, "reason": reason}
                if MessageKind(kind) is MessageKind.CANCEL:
                    details["withdraw"] = withdraw
                return await pub.lifecycle(
                    kind,
                    notice_id,
                    notice_type,
                    recipients,
                    details=details,
                )

        result = asyncio.run(run())
        _print_result(result, as_json)
        _exit_for(result)

    return command


cancel = _lifecycle_command("cancel", "Cancel or withdraw NOTICE_ID: recipients purge its data.")
suspend = _lifecycle_command("suspend", "Suspend NOTICE_ID: recipients keep it but must not act.")
erasure = _lifecycle_command("erasure", "Order recipients to erase NOTICE_ID and all copies.")


@click.command("consume")
@CONFIG
@click.option(
    "--until-idle",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Exit once no message arrived for this many seconds.",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Give up if the broker cannot be reached for this many seconds (default: retry forever).",
)
@click.option(
    "--replica",
    default=None,
    metavar="N",
    help="This daemon's replica id when a bureau runs several daemons (overrides `replica` in "
    "the config and NBX_REPLICA); two running daemons of a bureau never share one.",
)
def consume(
    config_path: Path, until_idle: float | None, connect_timeout: float | None, replica: str | None
) -> None:
    """Run the consumer daemon: receive, verify, deliver or quarantine, send receipts.

    SIGTERM or SIGINT finishes the batch in hand, commits and exits 0. An unreachable broker is
    retried with backoff (logged as transport.retry), so is an unreachable database (at start
    store.waiting, later store.retry). A store that cannot be written stops the daemon with exit
    code 3 before anything is committed; a replica id another running daemon holds, exit code 4.
    """
    from broker.logging import configure
    from broker.node import ConsumerDaemon
    from broker.node.replicas import REPLICA_ID, open_store
    from broker.node.runtime import load_node

    configure(level=os.environ.get("NBX_LOG_LEVEL", "INFO"))
    config = _config(config_path)
    if replica is not None:
        if not REPLICA_ID.match(replica):
            msg = f"--replica: expected letters, digits, - or _ (at most 32), got {replica!r}"
            raise click.BadParameter(msg)
        config = config.model_copy(update={"replica": replica})
    node = load_node(config)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        daemon: ConsumerDaemon | None = None

        def stop() -> None:
            stopping.set()
            if daemon is not None:
                daemon.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        opened = await open_store(config, stopping, opener=node.open_store)
        if opened is None:  # stopped while waiting for the store
            return
        held, sink = opened
        try:
            daemon = ConsumerDaemon.from_config(config, sink=sink)
            if stopping.is_set():
                return
            await daemon.run(until_idle_s=until_idle, connect_timeout_s=connect_timeout)
        finally:
            sink.close()
            held.release()

    asyncio.run(run())


@click.group("inbox")
def inbox() -> None:
    """Read the notices this bureau received."""


@inbox.command("list")
@CONFIG
@click.option(
    "--actionable",
    is_flag=True,
    help="Only notices that may be acted on (state actionable: reviewed if review is required, "
    "not refused, blocked, suspended, cancelled or purged).",
)
@click.option(
    "--expiring",
    "expiring",
    default=None,
    metavar="SPAN",
    help="Only notices still holding data whose retention ends within SPAN (30d, 12h, 2w): "
    "review due; each line then shows its retain_until.",
)
@JSON_OUT
def inbox_list(config_path: Path, actionable: bool, expiring: str | None, as_json: bool) -> None:
    """List the stored notices (ids, type, sender, version, state; --json adds the issuer's
    lifecycle status)."""
    from datetime import UTC, datetime

    from broker.sinks import open_sink
    from broker.sinks.retention import parse_duration

    within = None
    if expiring is not None:
        try:
            within = parse_duration(expiring)
        except ValueError as exc:
            raise NbxError(f"--expiring: {exc}") from None
    sink_config = _config(config_path).sink
    sink = open_sink(sink_config.url, password_env=sink_config.password_env)
    try:
        rows = sink.notices()
        due = (
            None
            if within is None
            else {
                (e.sender, e.notice_id): e.retain_until
                for e in sink.expiring(datetime.now(UTC), within)
            }
        )
    finally:
        sink.close()
    if actionable:
        rows = [r for r in rows if r["state"] == NoticeState.ACTIONABLE]
    shown: list[dict[str, Any]] = [dict(r) for r in rows]
    if due is not None:  # soonest first, with when each one's retention ends
        shown = sorted(
            (
                {**r, "retain_until": due[(r["sender"], r["notice_id"])]}
                for r in shown
                if (r["sender"], r["notice_id"]) in due
            ),
            key=lambda r: (r["retain_until"], r["notice_id"]),
        )
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    from broker.node.handling import evaluation

    for r in shown:
        reason = f" ({r['state_reason']})" if r["state_reason"] else ""
        until = f" retain until {r['retain_until']}" if due is not None else ""
        graded = evaluation(r["source_reliability"], r["information_accuracy"])
        codes = f"{r['handling'] or '-'} {graded}"
        click.echo(
            f"{r['notice_id']:24} {r['notice_type']:9} from {r['sender']} "
            f"v{r['version']} {codes} {r['state']}{reason}{until}"
        )


PURPOSE = click.option(
    "--purpose",
    required=True,
    help="Why the notice is read (recorded in the audit log with the operator; no personal data).",
)


@inbox.command("show")
@CONFIG
@click.argument("notice_id")
@PURPOSE
@JSON_OUT
def inbox_show(config_path: Path, notice_id: str, purpose: str, as_json: bool) -> None:
    """Show one notice: its disclosed view and what was withheld (and by which rule). The read is
    a consultation in the audit log: the operator ([audit] operator, NBX_OPERATOR or the OS user)
    and --purpose are recorded."""
    from broker.sinks import open_sink
    from broker.sinks.audit import Access, default_operator

    config = _config(config_path)
    access = Access(default_operator(config.audit.operator), purpose)
    sink = open_sink(config.sink.url, password_env=config.sink.password_env)
    try:
        row = sink.notice(notice_id, access)
        answers = [r for r in sink.responses(notice_id) if row and r.issuer == row["sender"]]
    finally:
        sink.close()
    if row is None:
        msg = f"{notice_id}: no such notice in the inbox"
        raise NbxError(msg)
    if as_json:
        withheld = [{"path": path, "rule": rule} for path, rule in row["withheld"] or []]
        shown = {**row, "withheld": withheld, "responses": [r.to_json() for r in answers]}
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    click.echo(f"{row['notice_id']} ({row['notice_type']}) from {row['sender']} v{row['version']}")
    reason = f" ({row['state_reason']})" if row["state_reason"] else ""
    click.echo(f"status: {row['status']}  state: {row['state']}{reason}  policy: {row['policy']}")
    from broker.node.handling import code_lines

    for line in code_lines(row["view"], row["sender"]):
        click.echo(line)
    click.echo(json.dumps(row["view"], indent=2, ensure_ascii=False))
    for path, rule in row["withheld"] or []:
        click.echo(f"withheld: {path} ({rule})")
    for flag in row["flags"]:  # screening aids: advice for a human, never a decision
        click.echo(f"flag {flag['code']}: {flag['reason']}")
    for line in response_lines(answers):  # what this bureau answered (or was shared)
        click.echo(line)


@inbox.command("export")
@CONFIG
@click.argument("notice_id")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The JSON file to write for the national system (created 0600; must not exist).",
)
@PURPOSE
@click.option(
    "--provider-permission",
    "permission",
    default=None,
    metavar="REF",
    help="The reference of the provider's permission to disseminate (required for H2 notices; "
    "recorded in the audit log). A reference, never a name.",
)
def inbox_export(
    config_path: Path, notice_id: str, out: Path, purpose: str, permission: str | None
) -> None:
    """Write NOTICE_ID (its disclosed view, what was withheld, its origin) as JSON for the
    national system. Only an actionable notice leaves; an H2 notice only with
    --provider-permission. The read is a consultation, the export a disclosure in the audit log
    (operator, --purpose, the permission's reference). H1 and H3 print what the recipient must
    respect."""
    from broker.node.handling import export_notice
    from broker.sinks import open_sink
    from broker.sinks.audit import Access, default_operator

    config = _config(config_path)
    access = Access(default_operator(config.audit.operator), purpose)
    try:
        fd = os.open(out, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise NbxError(f"--out {out}: exists; choose a new file") from None
    except OSError as exc:
        raise NbxError(f"--out {out}: {exc.strerror}") from None
    done = False
    try:
        sink = open_sink(config.sink.url, password_env=config.sink.password_env)
        try:
            exported = export_notice(sink, notice_id, access, permission=permission)
        finally:
            sink.close()
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            fd = -1
            json.dump(exported.document, f, indent=2, ensure_ascii=False)
            f.write("\n")
        done = True
    finally:
        if fd != -1:
            os.close(fd)
        if not done:
            out.unlink(missing_ok=True)
    for line in exported.lines:
        click.echo(line)
    click.echo(f"exported {notice_id} to {out}")


@click.command("status")
@CONFIG
@click.argument("notice_id", required=False)
@click.option(
    "--overdue",
    is_flag=True,
    help="List, across notices, every purging message (cancel, erasure, refusal, delete) whose "
    "recipient has not confirmed it with a signed purged receipt by its deadline.",
)
@JSON_OUT
def status(config_path: Path, notice_id: str | None, overdue: bool, as_json: bool) -> None:
    """Per recipient of NOTICE_ID: sent, delivered, rejected (reason), purged; for each
    purging message: confirmed, awaiting (until its deadline) or overdue; then the responses
    (located, arrested...) received or sent about it. With --overdue: the overdue purge
    confirmations across notices."""
    from datetime import UTC, datetime

    from broker.sinks import open_sink

    config = _config(config_path)
    if overdue:
        if notice_id is not None:
            raise click.UsageError("give either NOTICE_ID or --overdue")
        _print_overdue(config, as_json)
        return
    if notice_id is None:
        raise click.UsageError("give NOTICE_ID (or --overdue)")
    now = datetime.now(UTC)
    sink = open_sink(config.sink.url, password_env=config.sink.password_env)
    try:
        rows = sink.status(notice_id)
        facts = sink.facts(config.bureau, notice_id)
        replies = sink.responses(notice_id)
    finally:
        sink.close()
    if not rows:
        msg = f"{notice_id}: nothing was sent for this notice from this node"
        raise NbxError(msg)
    decisions = [_decision(f) for f in facts]
    rules = _rules_in_force(config)
    states = {r["recipient"]: recipient_state(r, facts, rules) for r in rows}
    proofs = {
        (r["recipient"], m["msg_id"]): proof
        for r in rows
        for m in r["messages"]
        if (proof := purge_proof(m, r["messages"], now)) is not None
    }
    if as_json:
        recipients = [
            {
                **r,
                "state": states[r["recipient"]],
                "messages": [
                    {**m, "erasure": proofs.get((r["recipient"], m["msg_id"]))}
                    for m in r["messages"]
                ],
            }
            for r in rows
        ]
        report = {
            "notice_id": notice_id,
            "recipients": recipients,
            "decisions": decisions,
            "responses": [r.to_json() for r in replies],
        }
        click.echo(json.dumps(report, indent=2))
        return
    for r in rows:
        for m in r["messages"]:
            answers = ", ".join(
                f"{x['status']}" + (f" ({x['reason']})" if x["reason"] else "")
                for x in m["receipts"]
            )
            proof = proofs.get((r["recipient"], m["msg_id"]))
            erasure = "" if proof is None else f"  [purge {proof}, due {m['deadline']}]"
            click.echo(
                f"{r['recipient']:3} {m['kind']:8} {m['status']:8} {answers or 'no receipt yet'}"
                f"{erasure}"
            )
        click.echo(f"{r['recipient']:3} state    {states[r['recipient']]}")
    pending = pending_receipts(rows)
    if pending:
        click.echo(pending_note(pending, config_path))
    for d in decisions:  # attestations and oversight decisions, in force at every recipient
        what = d["decision"] or d["kind"]
        detail = d["grounds"] or d["case_ref"] or ""
        click.echo(f"{d['by']:3} {what:8} {d['at']} {detail}".rstrip())
    for line in response_lines(replies):  # the recipients' answers: located, arrested...
        click.echo(line)


def pending_receipts(rows: list[Any]) -> int:
    """How many messages of ``nbx status``'s rows were sent and have no receipt yet."""
    return sum(
        1
        for r in rows
        for m in r["messages"]
        if m["status"] == SendStatus.SENT and not m["receipts"]
    )


def pending_note(pending: int, config_path: Path) -> str:
    """Why ``pending`` messages show ``no receipt yet``: receipts come back on this bureau's
    receipts topic and only its daemon reads them (``nbx status`` reads the store and never
    the broker: collecting receipts beside a running daemon would make two writers of the
    store and of the audit chain)."""
    plural = "message has" if pending == 1 else "messages have"
    return (
        f"note: {pending} {plural} no receipt yet. Receipts are collected by this bureau's own "
        f"daemon: keep `nbx consume --config {config_path}` running (or run it with "
        "--until-idle 5) and ask again; a receipt still missing then means the recipient's "
        "daemon has not read the message yet."
    )


#: a purging message's confirmation, as ``nbx status`` shows it
CONFIRMED, AWAITING, OVERDUE = "confirmed", "awaiting", "overdue"


def purge_proof(message: Any, messages: list[Any], now: Any) -> str | None:
    """For a purging message sent to one recipient (it has a deadline): ``confirmed`` (a signed
    ``purged`` receipt from it for this order or a resend of it), ``overdue`` (its deadline
    passed without one) or ``awaiting``; ``None`` for other messages. ``messages`` are all the
    messages sent to that recipient about the notice (a resend shares the order's deadline and
    kind)."""
    from broker.sinks.retention import stamp

    deadline = message["deadline"]
    if deadline is None or message["status"] != SendStatus.SENT:
        return None
    order = [m for m in messages if m["kind"] == message["kind"] and m["deadline"] == deadline]
    if any(x["status"] == ReceiptStatus.PURGED for m in order for x in m["receipts"]):
        return CONFIRMED
    return OVERDUE if deadline < stamp(now) else AWAITING


def _print_overdue(config: Any, as_json: bool) -> None:
    """``nbx status --overdue``: a table (or JSON) of the overdue purge confirmations."""
    from datetime import UTC, datetime

    from broker.sinks import open_sink

    sink = open_sink(config.sink.url, password_env=config.sink.password_env)
    try:
        rows = sink.overdue(datetime.now(UTC))
    finally:
        sink.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("no overdue purge confirmations")
    else:
        click.echo(f"{'NOTICE':24} {'TO':3} {'KIND':8} {'DEADLINE':29} MSG")
        for r in rows:
            click.echo(
                f"{r['notice_id']:24} {r['recipient']:3} {r['kind']:8} {r['deadline']:29} "
                f"{r['msg_id']}"
            )


def _rules_in_force(config: Any) -> Any:
    """The network rules this node's directory puts in force (a network without a reviewer
    requires no review); ``None`` when the directory is not at hand (read from the topic by the
    daemon), so a delivered version's review state is unknown here."""
    from broker.errors import KeyDirectoryError
    from broker.node.runtime import load_node

    try:
        return load_node(config).directory.rules()
    except KeyDirectoryError:
        return None


def recipient_state(row: Any, facts: list[Any], rules: Any) -> str:
    """What one recipient may do with the notice, as far as the sender knows: ``purged``
    (its purged receipt), ``refused`` / ``blocked`` (decisions the sender received),
    ``held-for-review`` (still on the reviewer's holding topic), ``pending-review`` (delivered,
    needs review, no approval of that version), ``actionable`` (delivered and approved or not
    needing review), ``rejected`` (its rejected receipt), else ``sent``."""
    messages = row["messages"]
    statuses = {x["status"] for m in messages for x in m["receipts"]}
    if ReceiptStatus.PURGED in statuses:
        return NoticeState.PURGED.value
    if any(f.kind == MessageKind.REVIEW and f.decision == "refused" for f in facts):
        return NoticeState.REFUSED.value
    blocks = {f.case_ref for f in facts if f.kind == MessageKind.BLOCK}
    lifted = {f.case_ref for f in facts if f.kind == MessageKind.UNBLOCK}
    if blocks - lifted:
        return NoticeState.BLOCKED.value
    versions = [m for m in messages if m["kind"] in (MessageKind.PUBLISH, MessageKind.UPDATE)]
    if not versions:
        return SendStatus.SENT.value
    latest = versions[-1]
    approved = any(
        f.kind == MessageKind.REVIEW
        and f.decision == "approved"
        and f.statement_hash == latest["statement_hash"]
        for f in facts
    )
    answers = {x["status"] for x in latest["receipts"]}
    if latest["status"] == SendStatus.HELD and not answers:
        return SendStatus.HELD.value if not approved else SendStatus.SENT.value
    if ReceiptStatus.REJECTED in answers:
        return ReceiptStatus.REJECTED.value
    if ReceiptStatus.DELIVERED not in answers:
        return SendStatus.SENT.value
    if approved:
        return NoticeState.ACTIONABLE.value
    if rules is None or latest["notice_type"] is None:
        return ReceiptStatus.DELIVERED.value  # whether it needs review is not known here
    if rules.needs_review(latest["kind"], latest["notice_type"]):
        return NoticeState.PENDING_REVIEW.value
    return NoticeState.ACTIONABLE.value


def _decision(fact: Any) -> dict[str, Any]:
    """A reviewer's attestation or an oversight decision about one of this node's notices, for
    ``nbx status`` (when: the time in its UUIDv7 message id)."""
    from datetime import UTC, datetime

    from broker.ids import uuid7_time_ms

    ms = uuid7_time_ms(fact.msg_id)
    at = None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat("T", "seconds")
    return {
        "by": fact.by,
        "kind": fact.kind,
        "decision": fact.decision,
        "grounds": fact.grounds,
        "case_ref": fact.case_ref,
        "statement_hash": fact.statement_hash,
        "msg_id": fact.msg_id,
        "at": at,
    }


def response_lines(responses: list[Any]) -> list[str]:
    """The lines ``nbx status`` and ``nbx inbox show`` print for the responses about a notice:
    who answered what and when, to whom (sent) or from whom (received), the note and each
    attachment by reference."""
    from broker.sinks.base import SENT_RESPONSE

    lines = []
    for r in responses:
        way = f"to {','.join(r.to)}" if r.direction == SENT_RESPONSE else f"from {r.by}"
        lines.append(f"response {r.kind:23} {r.at} {way}  msg {r.msg_id}")
        if r.note:
            lines.append(f"  note: {r.note}")
        for a in r.attachments:
            lines.append(f"  attachment: {a['uri']} ({a['media_type']}, sha256 {a['sha256']})")
    return lines


@node.command("config-reference")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the reference to this file (docs/node-toml.md) instead of printing it.",
)
def node_config_reference(out: Path | None) -> None:
    """Print the node.toml reference (every key, default, NBX_* override), from the config model."""
    from broker.node.config_reference import render

    text = render()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"wrote {out}")


def register(group: click.Group) -> None:
    """Add this module's commands to ``group``."""
    # ``erasure`` is broker/cli/erasure_cmds.py's (it also resends overdue orders)
    for command in (node, publish, cancel, suspend, consume, inbox, status):
        group.add_command(command)
