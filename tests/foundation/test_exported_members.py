"""The curated public API of ``broker`` is sorted and complete."""

from __future__ import annotations

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
