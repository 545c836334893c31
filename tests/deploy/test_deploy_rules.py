"""Prometheus rules (promtool), the generated PrometheusRule and Grafana dashboard kept in sync."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import yaml
from deploy_helpers import (
    DASHBOARD,
    K8S,
    PROMETHEUS_DIR,
    RECORDED_NAME,
    REPO,
    RULES,
    dashboard_expressions,
    promtool,
    rule_expressions,
)


def load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_promtool_checks_the_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    # Given synthetic series for stalled, growing lag, DLQ rate, latency and engine load failures;
    # Then each alert fires exactly where rules_test.yml says (and stays quiet elsewhere)
    result = subprocess.run(
        [promtool(), "test", "rules", str(PROMETHEUS_DIR / "rules_test.yml")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_required_alert_exists() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}
    assert {
        "StreamTaggerLagGrowing",
        "StreamTaggerHighFailureRate",
        "StreamTaggerLatencySLO",
        "StreamTaggerStalled",
        "StreamTaggerEngineLoadFailed",
    } <= alerts


def test_prometheusrule_is_generated_from_the_rules_file() -> None:
    generator = load_script(PROMETHEUS_DIR / "make_prometheusrule.py")
    committed = (K8S / "base" / "prometheusrule.yaml").read_text()
    assert committed == generator.render(RULES.read_text()), "run deploy/prometheus/make_prometheusrule.py"
    assert yaml.safe_load(committed)["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_prometheusrule_groups_pass_promtool(tmp_path: Path) -> None:
    # The custom resource has no Kubernetes schema here: check its content with promtool instead
    groups = yaml.safe_load((K8S / "base" / "prometheusrule.yaml").read_text())["spec"]["groups"]
    extracted = tmp_path / "from-cr.yml"
    extracted.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(extracted)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_generated() -> None:
    generator = load_script(REPO / "deploy" / "grafana" / "make_dashboard.py")
    assert DASHBOARD.read_text() == generator.render(), "run deploy/grafana/make_dashboard.py"


def test_dashboard_covers_the_operators_questions() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " | ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in (
        "throughput",
        "lag by partition",
        "latency",
        "heatmap",
        "dlq by error code",
        "batch size",
        "engine versions",
        "backend",
    ):
        assert topic in titles, topic
    assert {panel["type"] for panel in dashboard["panels"]} >= {"timeseries", "heatmap", "table"}
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_recorded_names_used_anywhere_are_defined() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    used = {
        name for expr in rule_expressions() + dashboard_expressions() for name in RECORDED_NAME.findall(expr)
    }
    assert used <= recorded, used - recorded
