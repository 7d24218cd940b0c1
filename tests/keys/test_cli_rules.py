"""``nbx directory add --role``, ``nbx directory rules`` and the roles and rules ``nbx directory
show`` prints: exact output, and one ``nbx: error:`` line for each kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from broker.cli import main
from broker.keys import Directory
from broker.keys.files import load_anchor_public_key


def run(*args: object, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert (result.exit_code == 0) == ok, result.output
    if not ok:
        assert result.exit_code == 1, result.output
    return result


class Net:
    """An anchor, key files for FR, DE, US, XR and XO, and a directory listing FR and DE."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.file = folder / "directory.json"
        self.anchor_key = folder / "anchor" / "trust-anchor.key"
        self.anchor_pub = folder / "anchor" / "trust-anchor.pub"
        run("keys", "init-anchor", folder / "anchor")
        for bureau in ("FR", "DE", "US", "XR", "XO"):
            run("keys", "new-bureau", bureau, "--dir", folder / "keys")
        self.add("FR", "NCB Paris")
        self.add("DE", "NCB Wiesbaden")

    def add(self, bureau: str, name: str, *roles: str, ok: bool = True) -> Result:
        keys = self.folder / "keys" / f"{bureau}.public.json"
        extra = [a for role in roles for a in ("--role", role)]
        return run(
            "directory",
            "add",
            bureau,
            "--keys",
            keys,
            "--name",
            name,
            *extra,
            "--file",
            self.file,
            "--anchor-key",
            self.anchor_key,
            ok=ok,
        )

    def rules(self, *args: str, ok: bool = True) -> Result:
        return run(
            "directory",
            "rules",
            *args,
            "--file",
            self.file,
            "--anchor-key",
            self.anchor_key,
            ok=ok,
        )

    def show(self) -> list[str]:
        """The lines of ``nbx directory show`` without the key lines (key ids and times vary)."""
        out = run("directory", "show", self.file, "--anchor", self.anchor_pub).stdout
        return [line for line in out.splitlines()[2:] if not line.startswith("  ")]

    def loaded(self) -> Directory:
        return Directory.load(self.file, load_anchor_public_key(self.anchor_pub))


@pytest.fixture
def net(tmp_path: Path) -> Net:
    return Net(tmp_path)


def test_roles_and_rules_through_the_cli(net: Net) -> None:
    """Add a reviewer (comma list) and an oversight body (repeated option), supervise DE, narrow
    the types, then release DE: each change prints its rules and the serial, ``show`` prints the
    roles and rules, and the signed file gives the same to a node."""
    assert net.show() == [
        "rules: review kinds=publish,update types=red,blue,green,diffusion "
        "reviewers=none (no reviewer listed: nothing needs review)",
        "rules: supervision none (every other sender post)",
        "DE  NCB Wiesbaden  roles=member",
        "FR  NCB Paris  roles=member",
    ]
    assert net.add("XR", "Review body", "reviewer,oversight").stdout == (
        f"wrote {net.file} serial 3 (was 2)\n"
    )
    assert net.add("XO", "Oversight body", "oversight", "member").stdout == (
        f"wrote {net.file} serial 4 (was 3)\n"
    )
    out = net.rules("--supervise", "DE=pre", "--review-types", "red,diffusion").stdout
    assert out == (
        "rules: review kinds=publish,update types=red,diffusion reviewers=XR\n"
        "rules: supervision DE=pre (every other sender post)\n"
        f"wrote {net.file} serial 5 (was 4)\n"
    )
    assert net.show() == [
        "rules: review kinds=publish,update types=red,diffusion reviewers=XR",
        "rules: supervision DE=pre (every other sender post)",
        "DE  NCB Wiesbaden  roles=member",
        "FR  NCB Paris  roles=member",
        "XO  Oversight body  roles=member,oversight",
        "XR  Review body  roles=member,reviewer,oversight",
    ]
    loaded = net.loaded()
    assert loaded.serial == 5
    assert loaded.roles("XR") == {"member", "reviewer", "oversight"}
    assert loaded.rules().supervision_of("DE") == "pre"
    assert loaded.rules().needs_review("publish", "diffusion")
    assert not loaded.rules().needs_review("publish", "blue")

    changed = net.rules("--unsupervise", "DE", "--supervise", "FR=post", "--review-kinds", "update")
    assert changed.stdout == (
        "rules: review kinds=update types=red,diffusion reviewers=XR\n"
        "rules: supervision FR=post (every other sender post)\n"
        f"wrote {net.file} serial 6 (was 5)\n"
    )
    emptied = net.rules("--review-types", "none")
    assert emptied.stdout.splitlines()[0] == "rules: review kinds=update types=none reviewers=XR"
    assert not net.loaded().rules().needs_review("update", "red")
    assert net.loaded().bureau_ids() == ["DE", "FR", "XO", "XR"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ("--review-types", "red,pink"),
            "unknown notice type 'pink' in --review-types: use red, yellow, blue, black, green, "
            "orange, purple, silver, un, diffusion or none",
        ),
        (
            ("--review-kinds", "publish,cancel"),
            "unknown message kind 'cancel' in --review-kinds: use publish, update or none",
        ),
        (
            ("--review-types", ","),
            "--review-types is empty: give notice types separated by commas, or none",
        ),
        (("--supervise", "US=pre"), "cannot supervise US: not in directory serial 3"),
        (("--supervise", "DE=mid"), "bad supervision level 'mid' for DE: use post or pre"),
        (("--supervise", "DE"), "bad --supervise 'DE': use BUREAU=pre or BUREAU=post, e.g. DE=pre"),
        (("--unsupervise", "FR"), "cannot unsupervise FR: the rules do not supervise it"),
        (
            ("--unsupervise", "fr"),
            "'fr' is not a bureau id (two upper-case letters, e.g. FR or XI)",
        ),
        (
            ("--supervise", "FR=pre", "--unsupervise", "FR"),
            "FR is both supervised and unsupervised: give one",
        ),
        (
            (),
            "nothing to change: give --review-types, --review-kinds, --supervise or --unsupervise",
        ),
    ],
)
def test_bad_rules_get_one_error_line(net: Net, args: tuple[str, ...], error: str) -> None:
    """Each bad ``nbx directory rules`` is one ``nbx: error:`` line; the file is unchanged."""
    net.add("XR", "Review body", "reviewer")
    before = net.file.read_bytes()
    result = net.rules(*args, ok=False)
    assert result.stdout == ""
    assert result.stderr == f"nbx: error: {error}\n"
    assert net.file.read_bytes() == before


def test_pre_supervision_needs_a_reviewer(net: Net) -> None:
    """Without a reviewer in the directory, nobody can be put under pre supervision."""
    result = net.rules("--supervise", "DE=pre", ok=False)
    assert result.stderr == (
        "nbx: error: the change would make an invalid directory: the rules put DE under pre "
        "supervision but no reviewer is listed\n"
    )


@pytest.mark.parametrize(
    ("bureau", "roles", "error"),
    [
        ("US", ("reviewer",), "US cannot have the role reviewer: only network bodies (XA..XZ) can"),
        (
            "US",
            ("member,oversight",),
            "US cannot have the role oversight: only network bodies (XA..XZ) can",
        ),
        (
            "XR",
            ("judge",),
            "unknown role 'judge': use reviewer or oversight (every bureau is a member)",
        ),
    ],
)
def test_bad_roles_get_one_error_line(
    net: Net, bureau: str, roles: tuple[str, ...], error: str
) -> None:
    """A body role on a country, or an unknown role, is one ``nbx: error:`` line."""
    before = net.file.read_bytes()
    result = net.add(bureau, "Someone", *roles, ok=False)
    assert result.stderr == f"nbx: error: {error}\n"
    assert net.file.read_bytes() == before


def test_roles_of_a_listed_bureau(net: Net) -> None:
    """``nbx directory roles`` gives a listed body its roles and takes them away again; the last
    reviewer cannot go while a sender is under pre supervision; a country cannot get one."""
    net.add("XR", "Review body")
    changed = run(
        "directory",
        "roles",
        "XR",
        "--role",
        "reviewer,oversight",
        "--file",
        net.file,
        "--anchor-key",
        net.anchor_key,
    )
    assert changed.stdout == (
        f"XR  roles=member,reviewer,oversight\nwrote {net.file} serial 4 (was 3)\n"
    )
    assert net.loaded().roles("XR") == {"member", "reviewer", "oversight"}
    net.rules("--supervise", "DE=pre")

    def roles(bureau: str, *args: str) -> Result:
        return run(
            "directory",
            "roles",
            bureau,
            *args,
            "--file",
            net.file,
            "--anchor-key",
            net.anchor_key,
            ok=False,
        )

    assert roles("XR", "--role", "oversight").stderr == (
        "nbx: error: the change would make an invalid directory: the rules put DE under pre "
        "supervision but no reviewer is listed\n"
    )
    assert roles("FR", "--role", "oversight").stderr == (
        "nbx: error: FR cannot have the role oversight: only network bodies (XA..XZ) can\n"
    )
    assert roles("XR", "--role", "oversight,reviewer").stderr == (
        "nbx: error: nothing to change: XR already has the roles member,reviewer,oversight\n"
    )
    assert roles("XO", "--role", "oversight").stderr == (
        "nbx: error: unknown bureau 'XO': not in directory serial 5\n"
    )
    net.rules("--unsupervise", "DE")
    run("directory", "roles", "XR", "--file", net.file, "--anchor-key", net.anchor_key)
    assert net.loaded().roles("XR") == {"member"}
    assert not net.loaded().rules().needs_review("publish", "red")
