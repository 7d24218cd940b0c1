"""Publisher API safety (docs/security/metadata.md, 11): the audience is required; nothing
skips policy."""

from __future__ import annotations

import inspect

import pytest

from broker.keys import BureauKeys
from broker.node import ALL, Publisher
from broker.transport import KafkaSettings
from tests.node.helpers import example


def _publisher() -> Publisher:
    keys = BureauKeys.generate("IT")
    # never started: these checks fail before anything touches the broker
    return Publisher(keys, directory=None, settings=KafkaSettings(bootstrap="127.0.0.1:1"))  # type: ignore[arg-type]


async def test_publish_without_audience_is_a_type_error() -> None:
    """Forgetting ``to`` raises TypeError instead of broadcasting to every bureau."""
    pub = _publisher()
    with pytest.raises(TypeError, match="'to'"):
        await pub.publish(example("red"))  # type: ignore[call-arg]


def test_to_has_no_default_and_all_is_explicit() -> None:
    """``to`` is required (no default); the constant ALL still names every bureau when passed."""
    param = inspect.signature(Publisher.publish).parameters["to"]
    assert param.default is inspect.Parameter.empty
    assert ALL == "all"


def test_send_is_not_public() -> None:
    """The low-level send (no policy) is private: no public attribute skips the privacy filter."""
    assert not hasattr(Publisher, "send")
    assert not hasattr(_publisher(), "send")
    public = {n for n in dir(Publisher) if not n.startswith("_")}
    assert public >= {"publish", "lifecycle"}
