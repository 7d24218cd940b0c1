"""``nbx respond``: answer a notice this bureau received (located, arrested, ...); the issuer
sees the answers in ``nbx status``, the responder in ``nbx inbox show``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from broker.cli.node_cmds import CONFIG, JSON_OUT, _config
from broker.errors import NbxError
from broker.vocab import ResponseKind, SendStatus


@click.command("respond")
@CONFIG
@click.argument("notice_id")
@click.option(
    "--kind",
    "kind",
    required=True,
    type=click.Choice([k.value for k in ResponseKind]),
    help="What this bureau answers (no-action and more-information-needed need --note).",
)
@click.option("--note", default=None, help="What was done or found, or what is needed.")
@click.option(
    "--attach",
    "uris",
    multiple=True,
    metavar="URI",
    help="A file this bureau holds, by reference (https:// or urn:); repeat for several, each "
    "with its --sha256 and --media-type in the same order.",
)
@click.option("--sha256", "hashes", multiple=True, metavar="HEX", help="SHA-256 of --attach.")
@click.option("--media-type", "media_types", multiple=True, metavar="TYPE", help="e.g. image/jpeg.")
@click.option("--in-reply-to", default=None, metavar="MSG_ID", help="The message answered.")
@click.option(
    "--no-share",
    is_flag=True,
    help="Send to the issuer only, not to the bureaus the notice shares responses with.",
)
@JSON_OUT
def respond(
    config_path: Path,
    notice_id: str,
    kind: str,
    note: str | None,
    uris: tuple[str, ...],
    hashes: tuple[str, ...],
    media_types: tuple[str, ...],
    in_reply_to: str | None,
    no_share: bool,
    as_json: bool,
) -> None:
    """Answer NOTICE_ID (a notice this bureau received and still holds): a signed response to
    its issuer and, unless --no-share, to the bureaus its responses_shared_with names that it
    was also addressed to (``nbx respond IT-2025-0001 --kind located --note "..."``).

    Exit code 0 when every recipient got it, 2 when some failed (listed), 1 on an error.
    """
    from broker.node import Publisher

    if not len(uris) == len(hashes) == len(media_types):
        msg = "every --attach needs its --sha256 and --media-type (in the same order)"
        raise NbxError(msg)
    attachments = [
        {"uri": u, "sha256": h.lower(), "media_type": t}
        for u, h, t in zip(uris, hashes, media_types, strict=True)
    ]
    config = _config(config_path)

    async def run() -> Any:
        async with Publisher.from_config(config) as pub:
            return await pub.respond(
                notice_id,
                kind,
                note=note,
                attachments=attachments,
                in_reply_to=in_reply_to,
                share=not no_share,
            )

    result = asyncio.run(run())
    if as_json:
        click.echo(json.dumps({**result.to_json(), "response": kind}, indent=2))
    else:
        click.echo(f"response {kind} {result.notice_id} msg {result.msg_id or '-'}")
        for o in result.outcomes:
            click.echo(f"  {o.recipient:3} {o.status:9} {o.reason or ''}".rstrip())
    if any(o.status == SendStatus.FAILED for o in result.outcomes):
        sys.exit(2)


def register(group: click.Group) -> None:
    """Add this module's commands to ``group``."""
    group.add_command(respond)
