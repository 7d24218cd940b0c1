"""Bundled examples: a notice of every type and the example per-country policies.

They ship inside the package so that ``nbx demo`` and ``nbx node init`` work from any install. In
the repository, ``examples/notices`` and ``deploy/policies`` are links to these folders.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def notices_dir() -> Path:
    """Folder of example notices (``red.json``, ``yellow.json``, ...)."""
    return _HERE / "notices"


def policies_dir() -> Path:
    """Folder of example policies (``default.toml`` and one file per country)."""
    return _HERE / "policies"
