"""tansu behind a TLS terminator names the terminator's port in its metadata."""

from __future__ import annotations

from pathlib import Path

from broker import devbroker


def test_tansu_advertises_the_given_port_and_listens_on_its_own() -> None:
    """``advertised_port`` changes only ``--advertised-listener-url``; without it both are the
    listening port, as before."""
    argv = devbroker.command("tansu", 9001, Path("unused"), advertised_port=9443)
    assert argv[1:] == [
        "broker",
        "--listener-url",
        "tcp://127.0.0.1:9001",
        "--advertised-listener-url",
        "tcp://127.0.0.1:9443",
    ]
    plain = devbroker.command("tansu", 9001, Path("unused"))
    assert plain[-1] == "tcp://127.0.0.1:9001"
