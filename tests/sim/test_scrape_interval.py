"""A mesh scraped every 15 s, as Istio's own Prometheus add-on scrapes it.

Why: the product's queries were only ever run against a Prometheus scraping every second,
where any rate window finds samples. Real clusters scrape every 15–60 s
(samples/addons/prometheus.yaml in istio/istio: 15s; kube-prometheus-stack: 30s), and
``increase()`` needs two samples inside its window. The ``mixed-workloads`` scenario asks
for a 15 s scrape; with it, the shipped rules at the default 1m step (4 scrapes) see every
namespace the tag reaches, while a 10s window — shorter than one scrape, what ``rules lint``
warns about — sees none of them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from analyzer.adapters.rule_files import default_rules_path, load_rules
from analyzer.core.durations import format_duration
from analyzer.core.templates import render_query
from analyzer.sim.mesh import SimulatedMesh
from analyzer.sim.scenario import load_scenario
from tests.fixtures.polling import wait_until
from tests.fixtures.prometheus_server import start_prometheus

pytestmark = pytest.mark.e2e  # a minute of real scrapes: scheduled first

REPO = Path(__file__).resolve().parents[2]
SERVING = ("accounts", "billing", "catalog", "delivery", "inventory", "orders")


def _namespaces(server, step: timedelta) -> set[str]:
    rules = {rule.name: rule for rule in load_rules([default_rules_path(None)])}
    query = render_query(
        rules["error-rate"].spec.denominator,
        namespace_label="destination_workload_namespace",
        namespaces=SERVING,
        step=step,
    )
    return {r["metric"]["destination_workload_namespace"] for r in server.query(query)}


def test_the_default_rules_see_every_namespace_at_a_15s_scrape_and_none_below_one_scrape(
    tmp_path,
):
    scenario = load_scenario(REPO / "scenarios" / "mixed-workloads.yaml")
    assert scenario.scrape_interval == timedelta(seconds=15)
    mesh = SimulatedMesh(scenario)
    mesh.start()
    server = None
    try:
        target = mesh.metrics_url.removeprefix("http://").removesuffix("/metrics")
        server = start_prometheus(
            tmp_path, scrape_targets=[target],
            scrape_interval=format_duration(scenario.scrape_interval),
        )  # fmt: skip
        # five scrapes: a whole 1m window of them
        wait_until(
            lambda: server.query("count_over_time(up[5m])")
            and float(server.query("count_over_time(up[5m])")[0]["value"][1]) >= 5,
            timeout=150,
            message="five scrapes of the mesh, 15 s apart",
        )
        assert _namespaces(server, timedelta(minutes=1)) == set(SERVING)
        assert _namespaces(server, timedelta(seconds=10)) == set()
    finally:
        if server is not None:
            server.stop()
        mesh.stop()
