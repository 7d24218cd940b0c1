"""``nbx deploy``: what a network's Kafka cluster needs, generated from the signed directory
(:mod:`broker.deploy`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("deploy")
def deploy() -> None:
    """Generate deployment material from the signed directory (certificates, ACLs, topics)."""


#: the output forms of ``nbx deploy acls``
KAFKA_ACLS = "kafka-acls"
STRIMZI = "strimzi"
DAY_MS = 86_400_000


@deploy.command("acls")
@click.option(
    "--directory",
    "directory_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The signed directory file.",
)
@click.option(
    "--anchor",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("keys/trust-anchor.pub"),
    show_default=True,
    help="The pinned trust anchor public key the directory must verify against.",
)
@click.option(
    "--format",
    "form",
    type=click.Choice([KAFKA_ACLS, STRIMZI]),
    default=KAFKA_ACLS,
    show_default=True,
    help="A bash script for kafka-topics.sh/kafka-acls.sh, or Strimzi KafkaUser/KafkaTopic YAML.",
)
@click.option("--bootstrap", help="kafka-acls: the cluster (else KAFKA_BOOTSTRAP at run time).")
@click.option(
    "--command-config",
    help="kafka-acls: the admin's client properties (else KAFKA_COMMAND_CONFIG at run time).",
)
@click.option("--partitions", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--replication", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--retention-days",
    type=click.IntRange(min=1),
    default=7,
    show_default=True,
    help="How long every topic but the directory keeps records (the nodes' "
    "[shredding] topic_retention_days).",
)
@click.option("--cluster", default="nbx", show_default=True, help="strimzi: the Kafka cluster.")
@click.option(
    "--authentication",
    type=click.Choice(["tls", "tls-external", "scram-sha-512"]),
    default="tls",
    show_default=True,
    help="strimzi: how the KafkaUsers authenticate.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (a script is made executable) instead of stdout.",
)
def acls(
    directory_file: Path,
    anchor: Path,
    form: str,
    bootstrap: str | None,
    command_config: str | None,
    partitions: int,
    replication: int,
    retention_days: int,
    cluster: str,
    authentication: str,
    out: Path | None,
) -> None:
    """Every principal's Kafka ACLs and every topic, from the verified directory: a bureau
    writes the other bureaus' inboxes and receipts and reads only its own inbox, receipts,
    quarantine and group; only the anchor operator (nbx-anchor) writes the directory."""
    from broker.deploy import acls as generate
    from broker.deploy.topics import topic_specs
    from broker.keys.directory import Directory
    from broker.keys.files import load_anchor_public_key

    directory = Directory.load(directory_file, load_anchor_public_key(anchor))
    rules = generate.network_acls(directory)
    topics = topic_specs(
        directory,
        partitions=partitions,
        replication=replication,
        retention_ms=retention_days * DAY_MS,
    )
    if form == KAFKA_ACLS:
        text = generate.kafka_acls_script(
            directory, rules, topics, bootstrap=bootstrap, command_config=command_config
        )
    else:
        resources = generate.strimzi_resources(
            rules, topics, cluster=cluster, authentication=generate.Authentication(authentication)
        )
        text = generate.strimzi_yaml(directory, resources)
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text)
    if form == KAFKA_ACLS:
        out.chmod(0o755)


def register(group: click.Group) -> None:
    """Add ``nbx deploy`` to the ``nbx`` command."""
    group.add_command(deploy)


from broker.cli.deploy_certs import certs  # noqa: E402 - part T's command, in its own module

deploy.add_command(certs)
