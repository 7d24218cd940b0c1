"""``nbx dev-broker`` and ``nbx demo``."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from types import FrameType

import click

from broker import devbroker


@click.command("dev-broker")
@click.option(
    "--impl",
    type=click.Choice(devbroker.IMPLS),
    default="noida",
    show_default=True,
    help="Which embedded Kafka-protocol broker to run.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default: a free one)."
)
def dev_broker(impl: devbroker.Impl, port: int | None) -> None:
    """Run an embedded Kafka-protocol broker on 127.0.0.1 in the foreground (Ctrl-C stops it)."""
    broker = devbroker.start(impl, port=port)
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        click.echo(f"{impl} broker ready: bootstrap={broker.bootstrap} pid={broker.pid}")
        click.echo("press Ctrl-C to stop")
        sys.stdout.flush()
        while not stop.wait(0.5):
            if not broker.is_running():
                click.echo(f"nbx: error: the {impl} broker exited; its log:", err=True)
                click.echo(broker.log_text(), err=True)
                sys.exit(1)
    finally:
        broker.stop()
    click.echo("broker stopped")


@click.command("demo")
@click.option(
    "--impl",
    type=click.Choice(devbroker.IMPLS),
    default="noida",
    show_default=True,
    help="Which embedded Kafka-protocol broker to run the demo on.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def demo(impl: devbroker.Impl, as_json: bool) -> None:
    """Run the exchange end to end on an embedded broker and print what each side did."""
    from broker import demo as demo_module

    sys.exit(demo_module.main(impl, as_json=as_json))


@click.command("ping")
@click.argument("bootstrap")
def ping(bootstrap: str) -> None:
    """Check that the Kafka broker at BOOTSTRAP (host:port) answers, and list its nbx.* topics."""
    from broker.transport import KafkaSettings, list_topics

    topics = asyncio.run(list_topics(KafkaSettings(bootstrap=bootstrap, request_timeout_ms=10_000)))
    click.echo(f"broker at {bootstrap} answered; {len(topics)} topics")
    for name in sorted(t for t in topics if t.startswith("nbx.")):
        click.echo(f"  {name}")


def register(group: click.Group) -> None:
    """Add this module's commands to ``group``."""
    group.add_command(dev_broker)
    group.add_command(ping)
    group.add_command(demo)
