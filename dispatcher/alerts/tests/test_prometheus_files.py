"""deploy/prometheus/alerts.yml passes promtool (its syntax, and its unit tests in alerts.test.yml),
and every metric it and deploy/grafana/lbpanel.json name is one /metrics exports (or one of the
carrier metrics, named by the carrier feature's contract)."""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dispatcher.tests.panel_support import write_health, write_node
from lbcore import contract

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "lbpanel.json"
CARRIER_METRICS = {
    "lbpanel_carrier_calls_total",
    "lbpanel_carrier_answered_total",
    "lbpanel_carrier_failures_total",
    "lbpanel_carrier_cps",
    "lbpanel_carrier_setup_seconds",
}
METRIC = re.compile(r"\blbpanel_[a-z0-9_]+")


def promtool(*args):
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed: apt-get install prometheus (make test-deps does)")
    return subprocess.run([path, *args], cwd=RULES.parent, capture_output=True, text=True, timeout=120)


def test_promtool_checks_the_rules():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout


def test_promtool_unit_tests_pass():
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.fixture
def exported(client, cluster, redis):
    """Every metric name /metrics gives, with a live proxy, health and a probe round so none is left out."""
    write_health(redis, cluster["ast1"].id, contract.UP)
    write_node(redis, "lb-a", load={"cpu": 0.3, "delay_ms": 1.0, "window_s": 10.0})
    redis.set(contract.LAST_ROUND_KEY, time.time())
    redis.set(contract.TABLE_VERSION_KEY, 1)
    names = set()
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        names.add(family.name + ("_total" if family.type == "counter" else ""))
        names.update(sample.name for sample in family.samples)
    return names


def _rule_exprs():
    doc = yaml.safe_load(RULES.read_text())
    return {rule["alert"]: rule["expr"] for group in doc["groups"] for rule in group["rules"]}


def test_every_rule_names_metrics_lbpanel_exports(exported):
    exprs = _rule_exprs()
    assert {"LbpanelServerDown", "LbpanelSetNoUsableServer", "LbpanelProxyNotReporting", "LbpanelProxyShedding"} <= set(exprs)
    assert {"LbpanelProbeRoundsStopped", "LbpanelCarrierAnswerRateLow", "LbpanelCarrierFailureRateHigh"} <= set(exprs)
    assert {"LbpanelProxyWorkerDropping", "LbpanelProxyBusy", "LbpanelProxyReaderBusy", "LbpanelAlertDeliveryFailing"} <= set(
        exprs
    )
    for name, expr in exprs.items():
        unknown = set(METRIC.findall(expr)) - exported - CARRIER_METRICS
        assert not unknown, f"{name} names metrics /metrics does not export: {unknown}"


def test_every_dashboard_query_names_metrics_lbpanel_exports(exported):
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
    titles = {title for title, _ in exprs}
    for wanted in ("Active calls per server", "CPS per server", "CPS per carrier", "Probe RTT", "Table lag"):
        assert wanted in titles
    assert any("shed" in e for _, e in exprs) and any("failovers" in e for _, e in exprs)
    for title, expr in exprs:
        names = set(METRIC.findall(expr))
        assert names, f"panel {title!r}: {expr} names no lbpanel metric"
        assert not names - exported - CARRIER_METRICS, (
            f"panel {title!r} names metrics /metrics does not export: {names - exported}"
        )
