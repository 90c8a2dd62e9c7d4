"""A real Prometheus scraping the traffic generator sees a bad revision's regression."""

from __future__ import annotations

from kubernetes import client as kube

from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import api_client_for
from tests.sim.test_kube_api import move_tag, restart_patch


def error_ratio(prometheus, namespace: str) -> float | None:
    selector = f'reporter="destination",destination_workload_namespace="{namespace}"'
    result = prometheus.query(
        f'sum(rate(istio_requests_total{{{selector},response_code=~"5.."}}[4s]))'
        f" / sum(rate(istio_requests_total{{{selector}}}[4s]))")
    return float(result[0]["value"][1]) if result else None


def test_error_ratio_rises_after_restart_onto_a_bad_revision(mesh, make_prometheus):
    prometheus = make_prometheus(mesh)
    wait_until(lambda: (error_ratio(prometheus, "bar") or 1.0) < 0.05, timeout=30,
               message="a healthy 5xx ratio for bar before the restart")
    api = api_client_for(mesh)
    move_tag(kube.AdmissionregistrationV1Api(api), "default", "1-15-4")
    kube.AppsV1Api(api).patch_namespaced_deployment("api", "bar", restart_patch())
    wait_until(lambda: (error_ratio(prometheus, "bar") or 0.0) > 0.1, timeout=30,
               message="bar's 5xx ratio to rise on 1-15-4")
    assert (error_ratio(prometheus, "foo") or 0.0) < 0.05  # not restarted: unchanged
    p99 = prometheus.query(
        'histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket'
        '{reporter="destination",destination_workload_namespace="foo"}[4s])))')
    assert p99 and float(p99[0]["value"][1]) > 0
