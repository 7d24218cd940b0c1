"""The in-process harnesses measure a publish and a daemon's store of real frames, no broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.bench import inproc


def test_publish_cost_is_measured_per_call() -> None:
    """Publishing the red notice to one recipient through the whole publish call costs CPU."""
    assert 0 < inproc.publish_cost(8, concurrency=4) < 1_000_000


def test_frames_survive_the_file_and_are_all_stored(tmp_path: Path) -> None:
    """Sealed frames and keys written and read back are opened and stored, every one of them
    (store_cost raises if a frame is not delivered)."""
    frames = inproc.seal_frames(6)
    frames.dump(tmp_path / "frames.bin")
    again = inproc.Frames.load(tmp_path / "frames.bin")
    assert again.frames == frames.frames
    assert again.recipient.encryption_key_id == frames.recipient.encryption_key_id
    assert again.sender.signing_key_id == frames.sender.signing_key_id
    assert 0 < inproc.store_cost(again, batch=3) < 1_000_000


def test_store_cost_refuses_frames_it_cannot_deliver(tmp_path: Path) -> None:
    """Frames sealed for other keys are not delivered, and the harness says so."""
    frames = inproc.seal_frames(2)
    frames.recipient = inproc.seal_frames(1).recipient  # another key pair: nothing opens
    with pytest.raises(RuntimeError, match="2 frames were not delivered"):
        inproc.store_cost(frames, batch=2)


def test_command_line_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``frames`` then ``store`` print the cost per record; a wrong command exits with usage."""
    inproc.main(["frames", "3", str(tmp_path / "f.bin")])
    inproc.main(["store", str(tmp_path / "f.bin"), "2"])
    assert capsys.readouterr().out.startswith("store: ")
    with pytest.raises(SystemExit, match="usage"):
        inproc.main(["nonsense"])
