"""deploy/monitoring/: the Prometheus alert rules and the Grafana dashboard parse, and every
expression names only metrics NBX exports (broker.vocab.Metric, with the label names a node
really exports) or Prometheus's own ``up``; reason codes in matchers are real reason codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from broker.node.metrics import NodeMetrics
from broker.node.stats import DaemonStats
from broker.vocab import Metric, Reason

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"

#: PromQL functions and aggregations the files may use
FUNCTIONS = {
    "rate",
    "increase",
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "histogram_quantile",
    "clamp_min",
    "label_values",
    "absent",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
#: labels Prometheus adds to every scraped series
TARGET_LABELS = {"instance", "job"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _exported_labels() -> dict[str, set[str]]:
    """Each exported series name (histogram series included) and its label names, from a
    NodeMetrics with everything attached."""
    metrics = NodeMetrics("FR")
    stats = DaemonStats()
    stats.reasons["replay"] = 1
    metrics.stats = stats
    metrics.consumed("nbx.inbox.FR", 0.001)
    metrics.committed(0.001)
    metrics.lag("nbx.inbox.FR", 0, 0)
    metrics.sent("sent")
    record = SimpleNamespace(keys=())
    metrics.directory = SimpleNamespace(serial=1, current=SimpleNamespace(bureau=lambda _: record))
    labels: dict[str, set[str]] = {"up": set()}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for s in family.samples:
            labels.setdefault(s.name, set()).update(s.labels)
    labels[Metric.KEY_EXPIRY_DAYS] = {"use", "key_id"}  # none valid in this fake directory
    return labels


EXPORTED = _exported_labels()


def check_expr(expr: str) -> tuple[set[str], set[str]]:
    """Check one PromQL expression; return (metric names, grouping labels) it uses.

    Fails on unbalanced brackets, an unknown function, a metric NBX does not export, a label
    matcher or grouping label the metrics used do not carry, a reason code that does not exist.
    """
    assert expr.count("(") == expr.count(")"), expr
    assert expr.count("{") == expr.count("}"), expr
    assert expr.count("[") == expr.count("]"), expr
    names: set[str] = set()
    grouping: set[str] = set()
    matchers: list[tuple[str, str]] = []
    # selectors: name{label op "value", ...}
    for body in re.findall(r"\{([^}]*)\}", expr):
        for label, value in re.findall(
            r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"([^"]*)"', body
        ):
            matchers.append((label, value))
            if label == "reason":
                for code in value.split("|"):
                    assert code in set(Reason), f"{expr}: unknown reason code {code!r}"
    rest = re.sub(r'"[^"]*"', '""', expr)
    rest = re.sub(r"\{[^}]*\}", "", rest)
    rest = re.sub(r"\[[^\]]*\]", "", rest)
    for labels in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", rest):
        grouping |= {label.strip() for label in labels.split(",") if label.strip()}
    rest = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", rest)
    for token, call in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", rest):
        if call:
            assert token in FUNCTIONS, f"{expr}: unknown function {token}"
        elif token in KEYWORDS or (token == "instance" and "label_values" in rest):
            continue
        else:
            assert token in EXPORTED, f"{expr}: {token} is not a metric NBX exports"
            names.add(token)
    assert names, f"{expr}: names no metric"
    carried = set().union(*(EXPORTED[n] for n in names)) | TARGET_LABELS
    for label, _ in matchers:
        assert label in carried, f"{expr}: no metric used carries label {label}"
    assert grouping <= carried, f"{expr}: grouping by {grouping - carried}"
    return names, grouping


def base(name: str) -> str:
    """The Metric a series belongs to (a histogram's _bucket/_sum/_count, a counter's _total)."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in set(Metric):
            return name.removesuffix(suffix)
    return name


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((MONITORING / "nbx-alerts.yaml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((MONITORING / "nbx-dashboard.json").read_text())
    return loaded


def test_the_checker_refuses_what_is_wrong() -> None:
    """The expression check fails for an unknown metric, label, function or reason code."""
    with pytest.raises(AssertionError, match="not a metric NBX exports"):
        check_expr("rate(nbx_messages_lost_total[5m]) > 0")
    with pytest.raises(AssertionError, match="grouping by"):
        check_expr("sum by (notice_id) (rate(nbx_messages_delivered_total[5m]))")
    with pytest.raises(AssertionError, match="carries label"):
        check_expr('nbx_ready{topic="x"} == 0')
    with pytest.raises(AssertionError, match="unknown function"):
        check_expr("frobnicate(nbx_ready)")
    with pytest.raises(AssertionError, match="unknown reason code"):
        check_expr('nbx_messages_quarantined_total{reason=~"replay|forged"}')
    assert check_expr(
        "histogram_quantile(0.9, sum by (le) (rate(nbx_store_commit_seconds_bucket[5m])))"
    ) == (
        {"nbx_store_commit_seconds_bucket"},
        {"le"},
    )


def test_alert_rules_parse_and_use_only_exported_metrics() -> None:
    """Each rule has an alert name, an expression over exported metrics, a severity and a
    summary whose $labels are ones the expression keeps; the issue's four alerts are there:
    quarantine rate, lag, key expiring, daemon down."""
    rules = _rules()
    used: dict[str, set[str]] = {}
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        names, grouping = check_expr(rule["expr"])
        used[rule["alert"]] = {base(n) for n in names}
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule
        kept = grouping or TARGET_LABELS | set().union(*(EXPORTED[n] for n in names))
        for text in rule["annotations"].values():
            for label in re.findall(r"\$labels\.([a-z_]+)", text):
                assert label in kept, f"{rule['alert']}: $labels.{label} is not kept"
    assert len(used) == len(rules)  # names are unique
    assert used["NbxDaemonDown"] == {"up"}
    assert Metric.QUARANTINED in used["NbxQuarantineRate"]
    assert used["NbxConsumerLag"] == {Metric.CONSUMER_LAG}
    assert used["NbxKeyExpiring"] == {Metric.KEY_EXPIRY_DAYS}


def test_the_dashboard_parses_and_shows_every_metric() -> None:
    """Every panel has a unique id, a grid position inside 24 columns and targets over exported
    metrics; together they show every Metric; the node variable reads nbx_build_info."""
    dashboard = _dashboard()
    assert dashboard["uid"] == "nbx-node"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    shown: set[str] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names, _ = check_expr(target["expr"])
            shown |= {base(n) for n in names}
    assert shown == set(Metric)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    names, _ = check_expr(variables["instance"]["definition"])
    assert names == {Metric.BUILD_INFO}
