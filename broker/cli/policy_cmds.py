"""``nbx policy check`` and ``nbx policy explain``: validate policies, explain decisions."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from broker.errors import SchemaError
from broker.ids import is_bureau_id
from broker.policy import (
    Decision,
    PolicySet,
    SenderRestrictions,
    check_policies,
    decide_all,
    inbound_check,
    load_policies,
    review_demand,
)
from broker.policy.engine import MinorJudgement, judge_minors
from broker.schemas import HandlingCode, NoticeBase, disclosure_units, parse_notice
from broker.schemas.age import JudgedAt, MinorTest
from broker.schemas.validation import NoticeInvalid, error_text
from broker.vocab import NoticeState, Reason, ReceiptStatus


@click.group("policy")
def policy() -> None:
    """Check privacy policy files and explain what each recipient would receive."""


@policy.command("check")
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
def check(directory: Path) -> None:
    """Validate every policy file in DIRECTORY; print each problem with file, line and rule."""
    policies, problems = check_policies(directory)
    for problem in problems:  # each names its file, line and rule first
        click.echo(f"nbx: error: {problem}", err=True)
    if problems:
        click.echo(f"nbx: error: {len(problems)} problem(s) in the policy files", err=True)
        sys.exit(1)
    for loaded in policies:
        click.echo(
            f"ok  {loaded.source}  {loaded.id}  "
            f"{len(loaded.rules)} rules, {len(loaded.declines)} inbound decline rules"
        )
    if policies.default is None:
        click.echo("note: no default.toml: countries without their own file cannot receive notices")


def _countries(values: tuple[str, ...], option: str) -> list[str]:
    """Country codes given as repeated options and/or comma-separated lists, upper-cased."""
    out: list[str] = []
    for value in values:
        for code in value.split(","):
            code = code.strip().upper()
            if not is_bureau_id(code):
                msg = f"{code!r} is not a two-letter bureau code"
                raise click.BadParameter(msg, param_hint=option)
            if code not in out:
                out.append(code)
    return out


def _read_notice(path: Path) -> NoticeBase:
    try:
        return parse_notice(path.read_bytes())
    except NoticeInvalid as exc:
        lines = [error_text(p, m) for p, m in exc.errors] or ["invalid"]
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        msg = f"{path}: invalid notice: {lines[0]}{more}"
        raise SchemaError(msg) from None
    except SchemaError as exc:
        lines = str(exc).splitlines() or ["invalid"]
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        msg = f"{path}: invalid notice: {lines[0]}{more}"
        raise SchemaError(msg) from None


@policy.command("explain")
@click.option(
    "--policies",
    "policies_dir",
    required=True,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Directory of policy files (CC.toml, default.toml).",
)
@click.option(
    "--to",
    "to",
    required=True,
    multiple=True,
    help="Recipient country; repeat or comma-separate for several (shown side by side).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Day of the decision, on which ages are judged (default: today).",
)
@click.option("--only", "only", multiple=True, help="Sender restriction: only these countries.")
@click.option("--exclude", "exclude", multiple=True, help="Sender restriction: not these.")
@click.option(
    "--handling",
    type=click.Choice([c.value for c in HandlingCode]),
    default=None,
    help="Sender restriction: handling code replacing the notice's own.",
)
@click.argument("notice_file", type=click.Path(path_type=Path, dir_okay=False))
def explain(
    policies_dir: Path,
    to: tuple[str, ...],
    as_json: bool,
    today: datetime | None,
    only: tuple[str, ...],
    exclude: tuple[str, ...],
    handling: str | None,
    notice_file: Path,
) -> None:
    """Show, field by field, what each --to country would receive of NOTICE_FILE and which rule
    decided it.

    Above the table: the sender restrictions applied (--only, --exclude, --handling). Below each
    recipient's outbound view: its inbound decision when its own policy file is in the folder
    (the recipient declines the notice by rule X: quarantined, never stored; holds it for review
    by rule Y; or accepts it), read from default.toml otherwise and said so.

    With --json, one recipient gives one object
    ``{"recipient", "policy", "allowed", "reason", "handling", "disclosed", "withheld",
    "sender_restrictions", "inbound"}`` (schemas/cli/policy-explain.json); several give a list
    of them, in the order given.
    """
    recipients = _countries(to, "--to")
    restrictions = None
    if only or exclude or handling:
        restrictions = SenderRestrictions(
            only=frozenset(_countries(only, "--only")) if only else None,
            exclude=frozenset(_countries(exclude, "--exclude")),
            handling=HandlingCode(handling) if handling else None,
        )
    policies = load_policies(policies_dir)
    notice = _read_notice(notice_file)
    day = today.date() if today else None
    decisions = decide_all(notice, recipients, policies, restrictions=restrictions, today=day)
    ordered = [decisions[r] for r in recipients]
    inbound = {d.recipient: inbound_decision(notice, d, policies) for d in ordered}
    if as_json:
        objects = [
            {
                **d.to_json(),
                "sender_restrictions": restrictions_json(restrictions),
                "inbound": inbound[d.recipient],
            }
            for d in ordered
        ]
        click.echo(json.dumps(objects[0] if len(objects) == 1 else objects, indent=2))
        return
    click.echo(_table(notice, ordered, judge_minors(notice, day), inbound, restrictions))


def restrictions_json(restrictions: SenderRestrictions | None) -> dict[str, Any] | None:
    """The sender restrictions applied, as JSON (``None``: none given)."""
    if restrictions is None:
        return None
    return {
        "only": None if restrictions.only is None else sorted(restrictions.only),
        "exclude": sorted(restrictions.exclude),
        "handling": restrictions.handling,
    }


def _restrictions_line(restrictions: SenderRestrictions | None) -> str:
    """``sender restrictions: only FR,DE; exclude US; handling H2`` (or ``none``)."""
    if restrictions is None:
        return "sender restrictions: none"
    parts = []
    if restrictions.only is not None:
        parts.append(f"only {','.join(sorted(restrictions.only))}")
    if restrictions.exclude:
        parts.append(f"exclude {','.join(sorted(restrictions.exclude))}")
    if restrictions.handling is not None:
        parts.append(f"handling {restrictions.handling}")
    return f"sender restrictions: {'; '.join(parts)}"


def inbound_decision(
    notice: NoticeBase, decision: Decision, policies: PolicySet
) -> dict[str, Any] | None:
    """What the recipient's own inbound policy does with the notice when it arrives, as the
    consumer decides it (broker.node.pipeline): ``declined-by-policy`` (quarantined, never stored;
    the sender gets a rejected receipt), ``pending-review`` (stored, not actionable until a
    reviewer approves) or ``delivered``; ``rule`` and ``reason`` of the deciding rule;
    ``own_file`` false when the folder has no file of the recipient and default.toml decided
    (the recipient's real policy may differ). ``None`` when nothing is sent to it."""
    if not decision.allowed:
        return None
    recipient = decision.recipient
    policy = policies.for_recipient(recipient)
    sender = str(notice.issuing_bureau)
    notice_type = str(notice.notice_type)
    outcome: str = ReceiptStatus.DELIVERED
    rule_id = inbound_check(
        policy,
        notice_type=notice_type,
        sender=sender,
        reliability=str(notice.source_reliability),
        accuracy=int(notice.information_accuracy),
    )
    if rule_id is not None:
        outcome = Reason.DECLINED_BY_POLICY
    else:
        rule_id = review_demand(policy, notice_type=notice_type, sender=sender)
        if rule_id is not None:
            outcome = NoticeState.PENDING_REVIEW
    rules = {r.id: r for r in (*policy.declines, *policy.review_demands)}
    return {
        "policy": policy.id,
        "own_file": recipient in policies.countries,
        "decision": str(outcome),
        "rule": rule_id,
        "reason": None if rule_id is None else rules[rule_id].reason,
    }


def _inbound_cell(inbound: dict[str, Any] | None) -> str:
    """The table's ``(inbound)`` cell of one recipient."""
    if inbound is None:
        return "-"
    cell = str(inbound["decision"])
    if inbound["rule"] is not None:
        cell += f"  {inbound['rule']}"
    return cell if inbound["own_file"] else f"{cell} (default.toml)"


def _cell(decision: Decision, path: str) -> str:
    if not decision.allowed:
        return "-"
    rule = decision.rule_for(path) or "?"
    if path in decision.disclosed:
        return f"disclose  {rule}"
    label = dict(decision.withheld_manifest).get(path, rule)
    return f"WITHHOLD  {rule}" + ("" if label == rule else f" (sent as {label})")


#: How the explanation names the day an age was judged at.
_JUDGED_AT = {
    JudgedAt.TODAY: "today",
    JudgedAt.OFFENCE: "at the offence",
    JudgedAt.MISSING_SINCE: "when missing",
    JudgedAt.DEATH: "at death",
}


def _minor_text(test: MinorTest) -> str:
    """``minor: yes (at the offence, 2021-06-01; protected role: free text too)``."""
    if test.basis is None:
        return "minor: no (no date of birth or estimated age)"
    words = [f"{_JUDGED_AT[test.when]}, {test.at.isoformat()}"]
    if test.minor:
        words.append(
            "protected role: free text protected too"
            if test.protected
            else "sought role: free text not protected"
        )
    return f"minor: {'yes' if test.minor else 'no'} ({'; '.join(words)})"


def _table(
    notice: NoticeBase,
    decisions: list[Decision],
    minors: MinorJudgement,
    inbound: dict[str, dict[str, Any] | None],
    restrictions: SenderRestrictions | None,
) -> str:
    """The per-field decision table, one column per recipient, then each recipient's inbound
    decision."""
    handling = decisions[0].handling or notice.handling.code
    role = notice.subject_category or "none (no person)"
    lines = [
        f"notice {notice.notice_id}: {notice.notice_type} from {notice.issuing_bureau}, "
        f"handling {handling}, reliability {notice.source_reliability}, "
        f"accuracy {notice.information_accuracy}",
        f"subject: {role}, {_minor_text(minors.subject)}",
    ]
    for index, test in enumerate(minors.related, 1):
        lines.append(f"related person {index}: {test.role}, {_minor_text(test)}")
    lines.append(_restrictions_line(restrictions))
    lines.append("")
    units = disclosure_units(notice)
    rows: list[list[str]] = [
        ["field", "category", *[d.recipient for d in decisions]],
        [
            "(policy)",
            "",
            *[d.policy if d.allowed else f"not sent: {d.reason}" for d in decisions],
        ],
    ]
    rows.append(["(inbound)", "", *[_inbound_cell(inbound[d.recipient]) for d in decisions]])
    rows += [[u.path, str(u.category), *[_cell(d, u.path) for d in decisions]] for u in units]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    totals = [
        f"{d.recipient}: {len(d.disclosed)} disclosed, {len(d.withheld)} withheld"
        if d.allowed
        else f"{d.recipient}: nothing sent ({d.reason})"
        for d in decisions
    ]
    lines += ["", "; ".join(totals)]
    lines += [_inbound_line(d.recipient, i) for d in decisions if (i := inbound[d.recipient])]
    return "\n".join(lines)


def _inbound_line(recipient: str, inbound: dict[str, Any]) -> str:
    """What the recipient does on arrival, in words."""
    source = "its policy" if inbound["own_file"] else f"default.toml, no {recipient}.toml here"
    if inbound["decision"] == Reason.DECLINED_BY_POLICY:
        what = (
            f"declines it by rule {inbound['rule']} ({inbound['reason']}): quarantined there, "
            "never stored; the sender's status shows rejected (declined-by-policy)"
        )
    elif inbound["decision"] == NoticeState.PENDING_REVIEW:
        what = (
            f"holds it for review by rule {inbound['rule']} ({inbound['reason']}): not "
            "actionable until a reviewer approves"
        )
    else:
        what = "accepts it (no inbound rule matches)"
    return f"{recipient} inbound ({source}): {what}"


def register(group: click.Group) -> None:
    """Add the ``policy`` command group to ``group``."""
    group.add_command(policy)
