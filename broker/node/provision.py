"""Provision a network of bureaus in one folder: trust anchor, keys, signed directory, configs.

Used by ``nbx node init``, ``nbx demo`` and the end-to-end tests. Layout::

    DIR/anchor/trust-anchor.key (0600), trust-anchor.pub
    DIR/directory.json                 signed by the anchor
    DIR/policies/*.toml                per-country policies (copied from a source folder)
    DIR/<CC>/keys/<CC>.signing.key, <CC>.encryption.key (0600), <CC>.public.json
    DIR/<CC>/node.toml                 the node configuration
    DIR/<CC>/<CC>.sqlite               the store (created by the node)
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pycountry

from broker.keys import BureauKeys, sign_directory
from broker.keys.directory_edit import PublicDocument, add_bureau, empty_directory, set_rules
from broker.keys.files import init_anchor, public_document, write_bureau_keys
from broker.keys.rules import SupervisionLevel

NODE_TOML = """\
# NBX node configuration for bureau {cc} (every setting: docs/node-toml.md).
# Environment variables override it: NBX_KAFKA__BOOTSTRAP=host:9092, NBX_SINK__URL=...
bureau = "{cc}"

[keys]
dir = "keys"

[trust]
anchor = "{anchor}"
directory = "{directory}"
# poll_interval_s = 1.0  # how often the directory file is checked for a change
# max_staleness_s = 3600.0  # not confirmed for longer: the daemon pauses, publish refuses
# max_directory_age_days = 30.0  # an older directory is refused: the anchor re-issues it

[kafka]
bootstrap = "{bootstrap}"
security_protocol = "PLAINTEXT"
enable_idempotence = {idempotence}
require_log_append_time = {log_append_time}
pace_empty_fetches = {pace_empty_fetches}  # true only for noida-db (see README)
session_timeout_ms = {session_timeout_ms}

[policy]
dir = "{policies}"

[sink]
url = "{sink}"

# [screening]  # screening aids for person-targeting notices (docs/safeguards.md)
# protected = "protected-persons.json"  # keyed hashes only: nbx screening protect add
# secret_env = "NBX_SCREENING_SECRET"  # the variable holding the hashing secret
# refusal_threshold = 0.2  # flag a sender whose recent refusal rate is above it

# [shredding]  # erasure on the broker's log (docs/safeguards.md)
# topic_retention_days = 7.0  # retention.ms of the inbox, receipts, quarantine, hold topics
# rotate_every_days = 90.0  # encryption key rotation schedule (nbx keys status, next-epoch)
# grace_days = 2.0  # an old key is destroyed 3 x (retention + 1 day) + this after retirement
# auto = true  # the daemon destroys expired encryption keys itself
# [retention]  # longest kept per notice type: [retention] of the policy file (default 5 years)
# warn_days = 30  # log retention.review-due this many days before a notice's retain_until
# confirm_within = "72h"  # purged receipts due by then (no erase_by), else overdue
"""


def bureau_name(cc: str) -> str:
    """A readable name for a bureau id (the country's name, or the organisation code)."""
    country = pycountry.countries.get(alpha_2=cc)
    return f"NCB {country.name}" if country is not None else f"Organisation {cc}"


def provision(
    folder: Path,
    bureaus: Sequence[str],
    *,
    bootstrap: str,
    policies: Path | None = None,
    sink: str = "sqlite",
    enable_idempotence: bool = True,
    session_timeout_ms: int = 10_000,
    now: datetime | None = None,
    require_log_append_time: bool = True,
    roles: Mapping[str, Sequence[str]] | None = None,
    supervise: Mapping[str, SupervisionLevel] | None = None,
    pace_empty_fetches: bool = False,
) -> dict[str, Path]:
    """Create anchor, keys, a signed directory and one ``node.toml`` per bureau in ``folder``.

    Returns the config path of each bureau. ``policies`` is copied to ``folder/policies``.
    ``require_log_append_time=False`` is for a broker that cannot time-stamp records (tansu).
    ``roles`` gives bureaus roles besides ``member`` (``{"XR": ["reviewer"]}``); ``supervise``
    puts senders under a supervision level of the network rules (``{"IT": "pre"}``).
    ``pace_empty_fetches=True`` is for a broker that answers empty fetches at once (noida-db).
    """
    now = now or datetime.now(UTC) - timedelta(minutes=5)
    folder.mkdir(parents=True, exist_ok=True)
    anchor = init_anchor(folder / "anchor")
    body = empty_directory(anchor.public_key(), now)
    policy_dir = folder / "policies"
    policy_dir.mkdir(exist_ok=True)
    if policies is not None:
        for src in sorted(policies.glob("*.toml")):
            shutil.copy(src, policy_dir / src.name)
    configs: dict[str, Path] = {}
    for cc in bureaus:
        home = folder / cc
        keys = BureauKeys.generate(cc)
        write_bureau_keys(home / "keys", keys)
        public = PublicDocument.model_validate(public_document(keys))
        extra = tuple((roles or {}).get(cc, ()))
        body = add_bureau(body, public, name=bureau_name(cc), now=now, roles=("member", *extra))
        ext = "sqlite" if sink == "sqlite" else "jsonl"
        config = home / "node.toml"
        config.write_text(
            NODE_TOML.format(
                cc=cc,
                anchor="../anchor/trust-anchor.pub",
                directory="../directory.json",
                bootstrap=bootstrap,
                idempotence=str(enable_idempotence).lower(),
                log_append_time=str(require_log_append_time).lower(),
                pace_empty_fetches=str(pace_empty_fetches).lower(),
                session_timeout_ms=session_timeout_ms,
                policies="../policies",
                sink=f"{sink}:///{cc}.{ext}",
            )
        )
        configs[cc] = config
    if supervise:
        body = set_rules(body, now=now, supervise=supervise)
    (folder / "directory.json").write_bytes(sign_directory(body, anchor))
    return configs
