"""Point 8 of issue 20: `nbx directory add` says which serial it signed and why (a new directory
file starts at serial 1; every later change signs the next serial and says which it replaced)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from broker.cli import main
from broker.keys import Directory
from broker.keys.files import load_anchor_public_key


def _nbx(*args: object) -> list[str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_the_first_directory_add_signs_serial_1_and_each_change_names_the_one_it_replaces(
    tmp_path: Path,
) -> None:
    anchor, d = tmp_path / "anchor", tmp_path / "directory.json"
    _nbx("keys", "init-anchor", anchor)
    for cc in ("FR", "DE"):
        _nbx("keys", "new-bureau", cc, "--dir", tmp_path / cc)
    key = anchor / "trust-anchor.key"
    first = _nbx("directory", "add", "FR", "--keys", tmp_path / "FR" / "FR.public.json",
                 "--name", "NCB Paris", "--file", d, "--anchor-key", key)  # fmt: skip
    assert first == [f"wrote {d} serial 1 (a new directory; each change signs the next serial)"]
    assert Directory.load(d, load_anchor_public_key(anchor / "trust-anchor.pub")).serial == 1
    second = _nbx("directory", "add", "DE", "--keys", tmp_path / "DE" / "DE.public.json",
                  "--name", "NCB Wiesbaden", "--file", d, "--anchor-key", key)  # fmt: skip
    assert second == [f"wrote {d} serial 2 (was 1)"]
    third = _nbx("directory", "reissue", "--file", d, "--anchor-key", key)
    assert third == [f"wrote {d} serial 3 (was 2)"]
    loaded = Directory.load(d, load_anchor_public_key(anchor / "trust-anchor.pub"), min_serial=3)
    assert loaded.bureau_ids() == ["DE", "FR"]
