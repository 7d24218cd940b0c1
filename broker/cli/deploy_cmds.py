"""``nbx deploy``: what a network's Kafka cluster needs, generated from the signed directory
(:mod:`broker.deploy`)."""

from __future__ import annotations

import click


@click.group("deploy")
def deploy() -> None:
    """Generate deployment material from the signed directory (certificates, ACLs, topics)."""


def register(group: click.Group) -> None:
    """Add ``nbx deploy`` to the ``nbx`` command."""
    group.add_command(deploy)


from broker.cli.deploy_certs import certs  # noqa: E402 - part T's command, in its own module

deploy.add_command(certs)
