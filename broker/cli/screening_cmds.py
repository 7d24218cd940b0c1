"""``nbx screening``: the protected-persons list (``protect add|count``) and the flags of a
notice file (``check``). Names given here are hashed at once and never printed nor logged."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from broker.errors import ConfigError
from broker.ids import is_bureau_id

CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help="The node's TOML configuration file.",
)


def _config(path: Path) -> Any:
    from broker.node.config import NodeConfig

    return NodeConfig.load(path)


@click.group("screening")
def screening() -> None:
    """Screening aids for reviewers: flags with reasons, never decisions."""


@screening.group("protect")
def protect() -> None:
    """The bureau's protected-persons list (keyed hashes of name and date of birth only)."""


@protect.command("add")
@CONFIG
@click.option("--family-name", required=True, help="The person's family name.")
@click.option("--given-names", default="", help="The person's given names (any order).")
@click.option("--dob", required=True, help="Date of birth, YYYY-MM-DD (or YYYY-MM, YYYY).")
def protect_add(config_path: Path, family_name: str, given_names: str, dob: str) -> None:
    """Add one person to the list: only the keyed hash is written (0600), never the name.

    The secret is read from the variable named by ``[screening] secret_env``
    (``NBX_SCREENING_SECRET`` by default).
    """
    from broker.screening import load_protected, save_protected, secret_from_env

    settings = _config(config_path).screening
    secret = secret_from_env(settings.secret_env)
    persons = load_protected(settings.protected, secret, secret_name=settings.secret_env)
    more = persons.added(family_name, given_names, dob)
    if len(more) == len(persons):
        click.echo(f"already on the list ({len(more)} protected persons)")
        return
    save_protected(settings.protected, more)
    click.echo(f"added ({len(more)} protected persons)")


@protect.command("count")
@CONFIG
def protect_count(config_path: Path) -> None:
    """Print how many persons the list holds (the secret, when set, is checked against it)."""
    from broker.screening import count_protected, load_protected, secret_from_env

    settings = _config(config_path).screening
    if os.environ.get(settings.secret_env):
        secret = secret_from_env(settings.secret_env)
        n = len(load_protected(settings.protected, secret, secret_name=settings.secret_env))
    else:
        n = count_protected(settings.protected)
    click.echo(f"{n} protected persons")


@screening.command("check")
@CONFIG
@click.option("--sender", default=None, help="The sending bureau (default: issuing_bureau).")
@click.option("--supervised", is_flag=True, help="The sender is under heightened supervision.")
@click.option(
    "--refusal-rate",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of the sender's recent messages that reviewers refused (0 to 1).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.argument("notice_file", type=click.Path(path_type=Path, dir_okay=False))
def check(
    config_path: Path,
    sender: str | None,
    supervised: bool,
    refusal_rate: float | None,
    as_json: bool,
    notice_file: Path,
) -> None:
    """Print the screening flags of NOTICE_FILE (a notice or a disclosed view, JSON), one per
    line as ``code: reason``. Flags are advice for a reviewer, never a decision."""
    from broker.screening import Screener

    settings = _config(config_path).screening
    try:
        view = json.loads(notice_file.read_bytes())
    except ValueError as exc:
        msg = f"{notice_file}: not JSON: {exc}"
        raise ConfigError(msg) from None
    if not isinstance(view, dict):
        msg = f"{notice_file}: not a notice (expected a JSON object)"
        raise ConfigError(msg)
    sender = sender or str(view.get("issuing_bureau", ""))
    if not is_bureau_id(sender):
        msg = f"{sender!r} is not a bureau id: give --sender"
        raise ConfigError(msg)
    screener = Screener.from_settings(settings)
    flags = screener.screen(
        view,
        notice_type=str(view.get("notice_type", "")),
        sender=sender,
        supervised=supervised,
        refusal_rate=refusal_rate,
    )
    if as_json:
        click.echo(json.dumps([f.to_json() for f in flags], indent=2))
        return
    if not flags:
        click.echo("no flags")
    for flag in flags:
        click.echo(f"{flag.code}: {flag.reason}")


def register(group: click.Group) -> None:
    """Add ``screening`` to ``group``."""
    group.add_command(screening)
