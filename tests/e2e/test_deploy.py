"""deploy/: the Prometheus config, rules, dashboard and Compose file are valid.

promtool (Debian package `prometheus`) checks the config and rules and runs
the rule unit tests; `docker compose` or `docker-compose` renders the Compose
file (`config` needs no Docker engine). Each check is skipped when its tool is
missing.
"""
import json
import pathlib
import shutil
import subprocess

import pytest

DEPLOY = pathlib.Path(__file__).resolve().parent.parent.parent / "deploy"


def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=DEPLOY)


def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    return path


def compose():
    if shutil.which("docker") and run("docker", "compose", "version").returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor docker-compose installed")


def test_prometheus_config_is_valid():
    r = run(promtool(), "check", "config", DEPLOY / "prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_rules_are_valid():
    r = run(promtool(), "check", "rules", DEPLOY / "rules.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_rules_behave():
    r = run(promtool(), "test", "rules", DEPLOY / "rules_test.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_prometheus_config_scrapes_the_analyzer():
    text = (DEPLOY / "prometheus.yml").read_text()
    assert "scrape_interval: 15s" in text
    assert 'targets: ["localhost:9100"]' in text
    assert 'targets: ["localhost:9090"]' in text
    assert "job_name: traffic-analyzer" in text


def test_dashboard_has_the_seed_graphs_and_the_outcome_table():
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]
    panels = dash["panels"]
    assert [p["type"] for p in panels] == ["timeseries", "timeseries", "table"]
    exprs = [p["targets"][0]["expr"] for p in panels]
    assert "traffic_endpoint_writes_total" in exprs[0] and "by (endpoint)" in exprs[0]
    assert "traffic_endpoint_write_throughput" in exprs[1] and "by (endpoint)" in exprs[1]
    assert "traffic_packets_total" in exprs[2] and "by (outcome)" in exprs[2]
    for p in panels:
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in p["targets"])


def test_compose_file_renders():
    r = run(*compose(), "-f", DEPLOY / "docker-compose.yml", "config")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for service in ("analyzer:", "loader:", "cassandra:", "prometheus:"):
        assert service in out
    assert "0.0.0.0:9100" in out
    assert "cassandra:5.0" in out
