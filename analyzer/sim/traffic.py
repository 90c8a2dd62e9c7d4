"""The traffic generator: standard Istio request metrics, one series set per pod.

Each tick draws request counts (Poisson), 5xx counts (binomial) and latencies (lognormal,
long-tailed, fitted to the scenario's p50/p99) for every ready pod of every workload, so a
namespace restarted onto a regressing revision shifts its metrics pod by pod during the
rollout, as in life. A time-of-night drift moves every namespace alike. Counts advance by
simulated time (real tick × time scale).

What a real mesh shows and this generator follows (docs/architecture.md, "The simulated
mesh and what it follows"):

- Istio's standard metrics (``istio_requests_total``,
  ``istio_request_duration_milliseconds``) are kept by each pod's Envoy and scraped per pod;
  Prometheus's pod scrape config in Istio's addon (istio/istio
  ``samples/addons/prometheus.yaml``, job ``kubernetes-pods``) adds the target labels
  ``namespace`` and ``pod``. One /metrics endpoint serves every pod here, so each series
  carries those two labels itself, plus ``istio_io_rev`` (the pod's ``istio.io/rev``
  annotation, as a ``labelmap`` of ``__meta_kubernetes_pod_annotation_istio_io_rev`` would
  add it): the revision of the proxy that reported the series.
- A pod's counters live as long as its proxy: when a pod is deleted its series leave the
  endpoint (Prometheus marks them stale); a new pod's series start from zero and appear
  with the first request carrying their labels (Envoy creates a stat on first use).
- A request between two sidecars is counted twice: ``reporter="destination"`` by the
  serving pod's proxy and ``reporter="source"`` by the caller's (the ingress gateway's pods
  for inbound traffic; the gateway's series exist when the scenario sets
  ``source_reporter``). A pod without a sidecar reports nothing.
- Each application pod also calls an upstream outside the mesh (``outbound``): only the
  calling proxy reports those (``reporter="source"``, ``source_workload_namespace`` = the
  caller's namespace, destination ``unknown``), so a new proxy's own outbound failures
  (a ``side: source`` regression) show there and nowhere server-side.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from analyzer.sim.clock import SimClock
from analyzer.sim.injection import proxy_revision
from analyzer.sim.resources import PODS
from analyzer.sim.scenario import DriftSpec, RegressionSpec, Scenario, TrafficSpec
from analyzer.sim.store import ObjectStore

#: Istio's default buckets for istio_request_duration_milliseconds.
ISTIO_DURATION_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
                             30000, 60000, 300000, 600000, 1800000, 3600000)
_Z99 = 2.3263478740408408  # standard normal 99th percentile
LABEL_NAMES = (
    "namespace", "pod", "istio_io_rev", "reporter", "source_workload", "source_workload_namespace", "destination_workload",
    "destination_workload_namespace", "destination_service", "destination_service_name",
    "destination_service_namespace", "destination_canonical_service",
    "destination_canonical_revision", "request_protocol", "response_code", "response_flags",
    "connection_security_policy",
)


@dataclass(frozen=True)
class Conditions:
    """Multipliers and offsets in force for one workload on one revision."""

    rate_factor: float = 1.0
    error_add_pp: float = 0.0
    p50_factor: float = 1.0
    p99_factor: float = 1.0


def drift_at(drift: DriftSpec | None, simulated_seconds: float) -> Conditions:
    """Piecewise-linear drift at a simulated instant (flat before the first/after the last)."""
    if drift is None:
        return Conditions()
    points = drift.points
    offsets = [point.after.total_seconds() for point in points]
    if simulated_seconds <= offsets[0]:
        first = points[0]
        return Conditions(first.rate_factor, first.error_offset_pp, first.latency_factor,
                          first.latency_factor)
    for index in range(1, len(points)):
        if simulated_seconds <= offsets[index]:
            span = offsets[index] - offsets[index - 1]
            weight = (simulated_seconds - offsets[index - 1]) / span if span else 1.0
            a, b = points[index - 1], points[index]
            latency = a.latency_factor + (b.latency_factor - a.latency_factor) * weight
            return Conditions(a.rate_factor + (b.rate_factor - a.rate_factor) * weight,
                              a.error_offset_pp + (b.error_offset_pp - a.error_offset_pp)
                              * weight, latency, latency)
    last = points[-1]
    return Conditions(last.rate_factor, last.error_offset_pp, last.latency_factor,
                      last.latency_factor)


def regression_for(regressions: list[RegressionSpec], revision: str | None, namespace: str,
                   workload: str, side: str = "destination") -> Conditions:
    """The combined regressions of one ``side`` that apply to a workload's pods on
    ``revision``."""
    result = Conditions()
    for regression in regressions:
        if regression.revision != revision or regression.side != side:
            continue
        if regression.namespace not in (None, namespace):
            continue
        if regression.workload not in (None, workload):
            continue
        result = Conditions(result.rate_factor * regression.rate_factor,
                            result.error_add_pp + regression.error_rate_add_pp,
                            result.p50_factor * regression.p50_factor,
                            result.p99_factor * regression.p99_factor)
    return result


@dataclass
class _Series:
    count: int = 0
    total_ms: float = 0.0
    buckets: np.ndarray = field(
        default_factory=lambda: np.zeros(len(ISTIO_DURATION_BUCKETS_MS), dtype=np.int64))


def _le(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


@dataclass(frozen=True)
class _Workload:
    namespace: str
    name: str
    traffic: TrafficSpec


@dataclass(frozen=True)
class _Pod:
    """A ready, non-terminating pod: where its series are reported from."""

    namespace: str
    name: str
    revision: str | None  # None: no sidecar, so no istio metrics of its own


# label positions in LABEL_NAMES
_POD_NAMESPACE, _POD, _REVISION, _REPORTER = 0, 1, 2, 3
_DEST_NAMESPACE, _CODE = 7, 14


class TrafficGenerator:
    """Keeps the cumulative Istio metrics per pod and advances them on every ``tick``."""

    def __init__(self, scenario: Scenario, store: ObjectStore, clock: SimClock) -> None:
        self._scenario = scenario
        self._store = store
        self._clock = clock
        self._rng = np.random.default_rng(scenario.seed)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], _Series] = {}
        self._serving: dict[tuple[str, str, str], int] = {}
        self._regressions = list(scenario.regressions)
        self._drift = scenario.drift
        self._outbound = scenario.outbound
        self._source = ("istio-ingressgateway", "istio-ingress")
        if scenario.gateway is not None:
            self._source = (scenario.gateway.name, scenario.gateway.namespace)
        self._workloads = [
            _Workload(namespace.name, workload.name, workload.traffic or namespace.traffic)
            for namespace in scenario.namespaces for workload in namespace.workloads
        ] + [
            _Workload(namespace.name, rollout.name, rollout.traffic or namespace.traffic)
            for namespace in scenario.namespaces for rollout in namespace.rollouts
        ]
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_IstioCollector(self))

    def set_regressions(self, regressions: list[RegressionSpec]) -> None:
        with self._lock:
            self._regressions = list(regressions)

    def set_drift(self, drift: DriftSpec | None) -> None:
        with self._lock:
            self._drift = drift

    def _ready_pods(self) -> tuple[dict[tuple[str, str], list[_Pod]], set[tuple[str, str]]]:
        """(namespace, app) → ready, non-terminating pods; and every existing pod's key."""
        result: dict[tuple[str, str], list[_Pod]] = {}
        existing: set[tuple[str, str]] = set()
        pods, _ = self._store.list(PODS, copy_objects=False)
        for pod in pods:
            metadata = pod["metadata"]
            existing.add((metadata["namespace"], metadata["name"]))
            if "deletionTimestamp" in metadata:
                continue  # endpoints drop a terminating pod: no new requests reach it
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (pod.get("status") or {}).get("conditions") or [])
            app = (metadata.get("labels") or {}).get("app")
            if ready and app:
                result.setdefault((metadata["namespace"], app), []).append(
                    _Pod(metadata["namespace"], metadata["name"], proxy_revision(pod)))
        for pods_of_app in result.values():
            pods_of_app.sort(key=lambda item: item.name)
        return result, existing

    def tick(self, real_seconds: float) -> None:
        """Advance the counters by ``real_seconds`` of real time."""
        simulated = real_seconds * self._clock.time_scale
        ready, existing = self._ready_pods()
        gateway_pods = ready.get((self._source[1], self._source[0]), [])
        with self._lock:
            # a deleted pod's proxy is gone, and its counters with it
            for key in [key for key in self._series
                        if (key[_POD_NAMESPACE], key[_POD]) not in existing]:
                del self._series[key]
            drift = drift_at(self._drift, self._clock.elapsed())
            self._serving = {}
            for workload in self._workloads:
                pods = ready.get((workload.namespace, workload.name), [])
                for revision, count in Counter(pod.revision for pod in pods).items():
                    self._serving[(workload.namespace, workload.name, revision or "none")] = count
                for pod in pods:
                    self._pod_traffic(workload, pod, len(pods), simulated, drift, gateway_pods)

    def _pod_traffic(self, workload: _Workload, pod: _Pod, pods: int, simulated: float,
                     drift: Conditions, gateway_pods: list[_Pod]) -> None:
        traffic = workload.traffic
        server = regression_for(self._regressions, pod.revision, workload.namespace,
                                workload.name, side="destination")
        inbound_rate = traffic.rps * drift.rate_factor * server.rate_factor / pods
        draws = self._draw(inbound_rate * simulated, traffic.error_rate, traffic.p50_ms,
                           traffic.p99_ms, drift, server)
        service = f"{workload.name}.{workload.namespace}.svc.cluster.local"
        destination = (workload.name, workload.namespace, service, workload.name,
                       workload.namespace, workload.name, "v1")
        for code, count, latencies_ms, counts in draws:
            if pod.revision is not None:
                self._add((pod.namespace, pod.name, pod.revision, "destination",
                           *self._source, *destination, "http", code, "-", "mutual_tls"),
                          count, latencies_ms, counts)
            if self._scenario.source_reporter and gateway_pods:
                caller = gateway_pods[int(self._rng.integers(len(gateway_pods)))]
                if caller.revision is not None:
                    self._add((caller.namespace, caller.name, caller.revision, "source",
                               *self._source, *destination, "http", code, "-",
                               "unknown"), count, latencies_ms, counts)
        outbound = self._outbound
        if outbound is None or pod.revision is None:
            return  # no sidecar on the caller: nobody reports its outbound calls
        client = regression_for(self._regressions, pod.revision, workload.namespace,
                                workload.name, side="source")
        draws = self._draw(inbound_rate * outbound.rps_share * client.rate_factor * simulated,
                           outbound.error_rate, outbound.p50_ms, outbound.p99_ms, drift, client)
        upstream = ("unknown", "unknown", outbound.host, outbound.host, "unknown", "unknown",
                    "latest")
        for code, count, latencies_ms, counts in draws:
            self._add((pod.namespace, pod.name, pod.revision, "source", workload.name,
                       workload.namespace, *upstream, "http", code, "-", "unknown"),
                      count, latencies_ms, counts)

    def _draw(self, expected: float, error_rate: float, p50_ms: float, p99_ms: float,
              drift: Conditions, regression: Conditions
              ) -> list[tuple[str, int, float, np.ndarray]]:
        """Requests for one pod and tick: (code, count, summed latency ms, bucket counts)."""
        requests = int(self._rng.poisson(max(expected, 0.0)))
        if requests == 0:
            return []
        rate = error_rate + (drift.error_add_pp + regression.error_add_pp) / 100
        errors = int(self._rng.binomial(requests, min(max(rate, 0.0), 1.0)))
        unavailable = int(self._rng.binomial(errors, 0.7))
        p50 = p50_ms * drift.p50_factor * regression.p50_factor
        p99 = max(p99_ms * drift.p99_factor * regression.p99_factor, p50 * 1.0001)
        mu = math.log(p50)
        sigma = (math.log(p99) - mu) / _Z99
        draws = []
        for code, count in (("200", requests - errors), ("503", unavailable),
                            ("500", errors - unavailable)):
            if count <= 0:
                continue
            latencies = self._rng.lognormal(mu, sigma, count)
            counts = np.bincount(np.searchsorted(ISTIO_DURATION_BUCKETS_MS, latencies),
                                 minlength=len(ISTIO_DURATION_BUCKETS_MS) + 1)
            draws.append((code, count, float(latencies.sum()),
                          counts[: len(ISTIO_DURATION_BUCKETS_MS)]))
        return draws

    def _add(self, labels: tuple[str, ...], count: int, total_ms: float,
             counts: np.ndarray) -> None:
        series = self._series.setdefault(labels, _Series())
        series.count += count
        series.total_ms += total_ms
        series.buckets += counts

    def snapshot(self) -> tuple[list[tuple[tuple[str, ...], int, float, list[int]]],
                                dict[tuple[str, str, str], int]]:
        with self._lock:
            series = [(labels, s.count, s.total_ms, np.cumsum(s.buckets).tolist())
                      for labels, s in self._series.items()]
            return series, dict(self._serving)

    def requests_total(self, namespace: str, code_class: str | None = None) -> int:
        """Current destination-reported requests of a namespace's live pods (``5``: 5xx)."""
        with self._lock:
            return sum(s.count for labels, s in self._series.items()
                       if labels[_REPORTER] == "destination"
                       and labels[_DEST_NAMESPACE] == namespace
                       and (code_class is None or labels[_CODE].startswith(code_class)))


class _IstioCollector(Collector):
    def __init__(self, generator: TrafficGenerator) -> None:
        self._generator = generator

    def collect(self) -> Any:
        series, serving = self._generator.snapshot()
        requests = CounterMetricFamily("istio_requests_total",
                                       "Requests served, as reported by Istio proxies.",
                                       labels=LABEL_NAMES)
        durations = HistogramMetricFamily("istio_request_duration_milliseconds",
                                          "Request duration in milliseconds.",
                                          labels=LABEL_NAMES)
        for labels, count, total_ms, cumulative in series:
            requests.add_metric(labels, count)
            buckets = [(_le(bound), value)
                       for bound, value in zip(ISTIO_DURATION_BUCKETS_MS, cumulative, strict=True)]
            buckets.append(("+Inf", count))
            durations.add_metric(labels, buckets, sum_value=total_ms)
        pods = GaugeMetricFamily("canary_sim_serving_pods",
                                 "Simulator only: ready pods per workload and proxy revision.",
                                 labels=("namespace", "workload", "proxy_revision"))
        for (namespace, workload, revision), count in sorted(serving.items()):
            pods.add_metric((namespace, workload, revision), count)
        yield requests
        yield durations
        yield pods
