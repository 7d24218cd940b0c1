"""The curated public API of ``broker`` is sorted and complete."""

from __future__ import annotations

import pytest

import broker
import broker.errors


def test_all_is_sorted_and_resolves() -> None:
    """`broker.__all__` is sorted, every name exists, and every NbxError subclass is exported."""
    assert broker.__all__ == sorted(broker.__all__)
    for name in broker.__all__:
        assert hasattr(broker, name), name
    errors = {
        name
        for name, obj in vars(broker.errors).items()
        if isinstance(obj, type) and issubclass(obj, broker.errors.NbxError)
    }
    assert errors <= set(broker.__all__)


#: what a bureau's own service needs (README, "Python API"), and where each is defined
EMBEDDING_API = {
    "ALL": "broker.vocab",
    "Applied": "broker.sinks.base",
    "ConsumerDaemon": "broker.node.consumer",
    "DaemonStats": "broker.node.stats",
    "KafkaSettings": "broker.transport.kafka",
    "NodeConfig": "broker.node.config",
    "NoticeInvalid": "broker.schemas.validation",
    "PublishResult": "broker.node.publisher",
    "Publisher": "broker.node.publisher",
    "RecipientOutcome": "broker.node.publisher",
    "VerifiedPackage": "broker.envelope.open",
    "parse_notice": "broker.schemas.validation",
}


def test_embedding_api_is_exported_from_the_front_door() -> None:
    """Each name of the embedding API is in `broker.__all__` and is the object its module defines
    (not a copy), so `from broker import Publisher` and `broker.node.Publisher` are one class."""
    import importlib

    assert set(EMBEDDING_API) <= set(broker.__all__)
    for name, module in EMBEDDING_API.items():
        assert getattr(broker, name) is getattr(importlib.import_module(module), name), name
    assert set(EMBEDDING_API) <= set(dir(broker))


def test_front_door_loads_lazily_and_refuses_unknown_names() -> None:
    """`import broker` does not import the node (commands stay light); an unknown name is an
    AttributeError naming it."""
    import subprocess
    import sys

    code = "import sys, broker; print('broker.node' in sys.modules, 'aiokafka' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]
    with pytest.raises(AttributeError) as caught:
        broker.NoSuchThing  # noqa: B018
    assert str(caught.value) == "module 'broker' has no attribute 'NoSuchThing'"
