"""``nbx keys rotate-anchor``: replace the trust anchor while the network runs.

Two steps (docs/security/anchor-rotation.md, the ceremony):

1. **Announce**, with the current anchor's key: ``--anchor-key OLD.key --successor NEW.pub`` signs
   the next serial with OLD, naming NEW as its successor (an anchor link signed by OLD).
2. **Take over**, with the successor's key: ``--anchor-key NEW.key`` checks the file with the
   announcing anchor (or with ``--anchor PINNED.pub``, following the chain) and signs the next
   serial with NEW, carrying every anchor link from earlier anchors to NEW.

Publish each result with ``nbx directory publish``; running nodes pinned to OLD follow the chain and
pin NEW without a restart. This module does not import :mod:`broker.cli.keys_cmds` (which adds the
command to its ``keys`` group), so the two do not import each other.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.cli.params import write_atomic
from broker.errors import KeyDirectoryError
from broker.keys import Directory, DirectoryBody, files, sign_directory
from broker.keys import directory_edit as edit
from broker.keys.anchor import AnchorLink, kid_of, make_link


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        msg = f"{path}: directory file not found"
        raise KeyDirectoryError(msg) from None


def _announcement(data: bytes) -> tuple[str | None, AnchorLink | None]:
    """The anchor key id the (not yet verified) file names and its announced successor link, as
    far as they can be read; verification follows with the key they lead to."""
    try:
        content = json.loads(data)["directory"]
        claimed = content["anchor_kid"]
        raw = content.get("successor")
        link = AnchorLink.model_validate(raw) if raw is not None else None
    except Exception:  # not readable: the verification that follows says why, in one line
        return None, None
    return (claimed if isinstance(claimed, str) else None), link


def _save(path: Path, body: DirectoryBody, key: ed25519.Ed25519PrivateKey) -> None:
    write_atomic(path, sign_directory(body, key))
    click.echo(f"wrote {path} serial {body.serial} (was {body.serial - 1})")


def announce(path: Path, key: ed25519.Ed25519PrivateKey, successor_path: Path) -> None:
    """Step 1: the current anchor ``key`` names the key in ``successor_path`` its successor."""
    data = _read(path)
    kid = kid_of(key.public_key())
    claimed, link = _announcement(data)
    if claimed not in (None, kid) and link is not None and link.to_kid == kid:
        msg = (
            f"{path}: the key {kid} is the announced successor of anchor {claimed}: take over "
            "without --successor"
        )
        raise KeyDirectoryError(msg)
    try:
        loaded = Directory.from_signed(data, key.public_key(), source=str(path))
    except KeyDirectoryError:
        if claimed in (None, kid):
            raise
        msg = (
            f"{path}: the key {kid} is neither the anchor {claimed} of the directory nor its "
            "announced successor"
        )
        raise KeyDirectoryError(msg) from None
    body = loaded.body
    if body.anchor_kid != kid:
        msg = (
            f"{path}: the key {kid} is no longer the anchor: directory serial {body.serial} is "
            f"signed by its successor {body.anchor_kid}"
        )
        raise KeyDirectoryError(msg)
    successor = files.load_anchor_public_key(successor_path)
    if kid_of(successor) == kid:
        msg = f"{successor_path}: the successor anchor {kid} is the current anchor: give a new key"
        raise KeyDirectoryError(msg)
    link = make_link(key, successor, datetime.now(UTC))
    new = edit.announce_successor(body, link, now=link.at)
    click.echo(f"anchor {kid} announces its successor {link.to_kid}")
    if body.successor is not None and body.successor.to_kid != link.to_kid:
        click.echo(
            f"(replaces the announcement of {body.successor.to_kid} in serial {body.serial})"
        )
    _save(path, new, key)
    click.echo(
        f"next: publish {path.name} (nbx directory publish), then the holder of the successor's "
        f"key takes over: nbx keys rotate-anchor --file {path.name} --anchor-key NEW.key"
    )


def take_over(path: Path, key: ed25519.Ed25519PrivateKey, pinned_path: Path | None) -> None:
    """Step 2: the announced successor ``key`` signs the next serial with the anchor chain."""
    data = _read(path)
    kid = kid_of(key.public_key())
    claimed, link = _announcement(data)
    if pinned_path is not None:
        loaded = Directory.from_signed(
            data, files.load_anchor_public_key(pinned_path), source=str(path)
        )
        how = f"verified with {pinned_path}"
    elif claimed == kid:
        loaded = Directory.from_signed(data, key.public_key(), source=str(path))
        how = "signed by this key"
    elif link is None:
        # nothing announced: say so after checking the file is what it claims, where possible
        msg = (
            f"{path}: directory names no successor anchor: nothing to take over (the current "
            "anchor announces one first: nbx keys rotate-anchor --anchor-key CURRENT.key "
            "--successor NEW.pub)"
        )
        raise KeyDirectoryError(msg)
    else:
        loaded = Directory.from_signed(data, link.from_key(), source=str(path))
        how = (
            f"verified with the announcing anchor {link.from_kid}: compare it with your pinned key"
        )
    body = loaded.body
    if body.anchor_kid == kid:
        msg = (
            f"{path}: the key {kid} is the current anchor of directory serial {body.serial}: "
            "to rotate, announce a successor with --successor NEW.pub"
        )
        raise KeyDirectoryError(msg)
    try:
        new = edit.take_over(body, key.public_key(), now=datetime.now(UTC))
    except KeyDirectoryError as exc:
        raise KeyDirectoryError(f"{path}: {exc}") from None
    click.echo(f"directory serial {body.serial} {how}")
    click.echo(
        f"anchor {kid} takes over from {body.anchor_kid} "
        f"(anchor chain of {len(new.anchor_chain)} link(s))"
    )
    _save(path, new, key)
    click.echo(
        f"next: publish {path.name} (nbx directory publish); nodes pinned to {body.anchor_kid} "
        "follow the chain; replace their trust.anchor files at leisure, then destroy the old key"
    )


@click.command("rotate-anchor")
@click.option(
    "--file",
    "directory_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The signed directory file to update.",
)
@click.option(
    "--anchor-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Announce: the current anchor's private key; take over: the announced successor's "
    "(passphrase from NBX_KEY_PASSPHRASE).",
)
@click.option(
    "--successor",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Announce this public key (trust-anchor.pub from nbx keys init-anchor) as the "
    "anchor's successor.",
)
@click.option(
    "--anchor",
    "pinned",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Take over: check the file against this pinned anchor public key (following the "
    "anchor chain) rather than against the announcing anchor the file names.",
)
def rotate_anchor(
    directory_file: Path, anchor_key: Path, successor: Path | None, pinned: Path | None
) -> None:
    """Rotate the trust anchor: announce a successor (--successor, with the current anchor's
    key), then take over (with the successor's key). See docs/security/anchor-rotation.md."""
    key = files.load_signing_key(anchor_key, files.passphrase_from_env())
    if successor is not None:
        announce(directory_file, key, successor)
    else:
        take_over(directory_file, key, pinned)
