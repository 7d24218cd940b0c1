"""Who a client is on the Kafka cluster: one principal per bureau, one for the anchor operator.

A bureau's principal is ``nbx-<CC>`` (``nbx-FR``): the CN of its client certificate
(``nbx deploy certs``) and the user name of its SCRAM credentials, so the ACLs of
``nbx deploy acls`` name ``User:nbx-FR`` whichever way it authenticates (with mutual TLS the
broker maps the certificate's distinguished name to the CN with ``ssl.principal.mapping.rules``,
see deploy/README.md). Network bodies (reviewer, oversight) are bureaus with an organisation id
(``nbx-XR``). The anchor operator, who alone writes ``nbx.directory``, is ``nbx-anchor``. A
bureau's consumer group stays ``nbx.<CC>`` (:func:`broker.transport.topics.group`).
"""

from __future__ import annotations

from typing import Final

#: the prefix of every NBX principal
PREFIX: Final = "nbx-"
#: the principal of the trust anchor's operator (publishes ``nbx.directory``)
ANCHOR_PRINCIPAL: Final = "nbx-anchor"


def principal(bureau: str) -> str:
    """The principal name of ``bureau``: ``nbx-FR`` (without Kafka's ``User:`` type)."""
    return f"{PREFIX}{bureau}"


def acl_principal(name: str) -> str:
    """A principal name as Kafka ACLs write it: ``User:nbx-FR``."""
    return f"User:{name}"
