"""A bureau declines notices by their evaluation codes when its daemon receives them (in-memory
broker): the header's source_reliability and information_accuracy reach its decline rules."""

from __future__ import annotations

import shutil
from pathlib import Path

from broker.examples import policies_dir
from broker.vocab import AuditAction, Reason
from tests.node.helpers import example, memory_net, wait_for

FR = """
schema = "nbx-policy/1"
country = "FR"

[[rule]]
id = "fr-identity"
action = "disclose"
reason = "identity"
category = "identity"

[inbound]

[[inbound.decline]]
id = "fr-unknown-source"
reason = "requests from a source of unknown reliability are not acted on here"
reliability = "X"
"""


async def test_a_notice_from_an_unknown_source_is_declined(tmp_path: Path) -> None:
    """FR declines a red notice graded X (quarantine, declined-by-policy, one rejection in its
    audit log) and stores the same notice graded B."""
    policies = tmp_path / "policies"
    shutil.copytree(policies_dir(), policies)
    (policies / "FR.toml").write_text(FR)
    net = memory_net(tmp_path / "net", ("IT", "FR"), policies=policies)
    graded_x = example("red", source_reliability="X", notice_id="IT-2025-0901")
    graded_b = example("red", source_reliability="B", notice_id="IT-2025-0902")
    await net.start("FR")
    try:
        await net.publish("IT", graded_x, ["FR"])
        await net.publish("IT", graded_b, ["FR"])
        sink = net.daemon("FR").sink
        assert await wait_for(lambda: len(sink.audit_entries()) == 2)
        entries = [(e.action, e.notice_id, e.reason) for e in sink.audit_entries()]
        assert (AuditAction.REJECTION, "IT-2025-0901", Reason.DECLINED_BY_POLICY) in entries
        assert [n["notice_id"] for n in sink.notices()] == ["IT-2025-0902"]
    finally:
        await net.stop()
