"""The traffic generator: standard Istio request metrics for every simulated workload.

Each tick draws request counts (Poisson), 5xx counts (binomial) and latencies (lognormal,
long-tailed, fitted to the scenario's p50/p99) per workload and per proxy revision of its
ready pods at that moment, so a namespace restarted onto a regressing revision shifts its
metrics pod by pod during the rollout, as in life. A time-of-night drift moves every
namespace alike. Counts advance by simulated time (real tick × time scale).
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
    "reporter", "source_workload", "source_workload_namespace", "destination_workload",
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
                   workload: str) -> Conditions:
    """The combined regressions that apply to a workload's pods on ``revision``."""
    result = Conditions()
    for regression in regressions:
        if regression.revision != revision:
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


class TrafficGenerator:
    """Keeps the cumulative Istio metrics and advances them on every ``tick``."""

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
        self._source = ("istio-ingressgateway", "istio-ingress")
        if scenario.gateway is not None:
            self._source = (scenario.gateway.name, scenario.gateway.namespace)
        self._workloads = [
            _Workload(namespace.name, workload.name, workload.traffic or namespace.traffic)
            for namespace in scenario.namespaces for workload in namespace.workloads
        ]
        for workload in self._workloads:
            for reporter in self._reporters():
                self._series_for(workload, reporter, "200")
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_IstioCollector(self))

    def _reporters(self) -> tuple[str, ...]:
        return ("destination", "source") if self._scenario.source_reporter else ("destination",)

    def _series_for(self, workload: _Workload, reporter: str, code: str) -> _Series:
        service = f"{workload.name}.{workload.namespace}.svc.cluster.local"
        labels = (reporter, self._source[0], self._source[1], workload.name, workload.namespace,
                  service, workload.name, workload.namespace, workload.name, "v1", "http",
                  code, "-", "mutual_tls")
        return self._series.setdefault(labels, _Series())

    def set_regressions(self, regressions: list[RegressionSpec]) -> None:
        with self._lock:
            self._regressions = list(regressions)

    def set_drift(self, drift: DriftSpec | None) -> None:
        with self._lock:
            self._drift = drift

    def _serving_pods(self) -> dict[tuple[str, str], Counter[str | None]]:
        """(namespace, workload) → ready, non-terminating pods per proxy revision."""
        result: dict[tuple[str, str], Counter[str | None]] = {}
        pods, _ = self._store.list(PODS, copy_objects=False)
        for pod in pods:
            metadata = pod["metadata"]
            if "deletionTimestamp" in metadata:
                continue
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (pod.get("status") or {}).get("conditions") or [])
            app = (metadata.get("labels") or {}).get("app")
            if ready and app:
                result.setdefault((metadata["namespace"], app), Counter())[
                    proxy_revision(pod)] += 1
        return result

    def tick(self, real_seconds: float) -> None:
        """Advance the counters by ``real_seconds`` of real time."""
        simulated = real_seconds * self._clock.time_scale
        serving = self._serving_pods()
        with self._lock:
            drift = drift_at(self._drift, self._clock.elapsed())
            self._serving = {}
            for workload in self._workloads:
                revisions = serving.get((workload.namespace, workload.name), Counter())
                total_pods = sum(revisions.values())
                for revision, pods in revisions.items():
                    self._serving[(workload.namespace, workload.name, revision or "none")] = pods
                    regression = regression_for(self._regressions, revision,
                                                workload.namespace, workload.name)
                    self._generate(workload, pods / total_pods, simulated, drift, regression)

    def _generate(self, workload: _Workload, share: float, simulated: float, drift: Conditions,
                  regression: Conditions) -> None:
        traffic = workload.traffic
        expected = traffic.rps * drift.rate_factor * regression.rate_factor * share * simulated
        requests = int(self._rng.poisson(max(expected, 0.0)))
        if requests == 0:
            return
        error_rate = traffic.error_rate + (drift.error_add_pp + regression.error_add_pp) / 100
        error_rate = min(max(error_rate, 0.0), 1.0)
        errors = int(self._rng.binomial(requests, error_rate))
        unavailable = int(self._rng.binomial(errors, 0.7))
        p50 = traffic.p50_ms * drift.p50_factor * regression.p50_factor
        p99 = max(traffic.p99_ms * drift.p99_factor * regression.p99_factor, p50 * 1.0001)
        mu = math.log(p50)
        sigma = (math.log(p99) - mu) / _Z99
        for code, count in (("200", requests - errors), ("503", unavailable),
                            ("500", errors - unavailable)):
            if count <= 0:
                continue
            latencies = self._rng.lognormal(mu, sigma, count)
            counts = np.bincount(np.searchsorted(ISTIO_DURATION_BUCKETS_MS, latencies),
                                 minlength=len(ISTIO_DURATION_BUCKETS_MS) + 1)
            for reporter in self._reporters():
                series = self._series_for(workload, reporter, code)
                series.count += count
                series.total_ms += float(latencies.sum())
                series.buckets += counts[: len(ISTIO_DURATION_BUCKETS_MS)]

    def snapshot(self) -> tuple[list[tuple[tuple[str, ...], int, float, list[int]]],
                                dict[tuple[str, str, str], int]]:
        with self._lock:
            series = [(labels, s.count, s.total_ms, np.cumsum(s.buckets).tolist())
                      for labels, s in self._series.items()]
            return series, dict(self._serving)

    def requests_total(self, namespace: str, code_class: str | None = None) -> int:
        """Cumulative destination-reported requests of a namespace (``5`` = only 5xx)."""
        with self._lock:
            return sum(s.count for labels, s in self._series.items()
                       if labels[0] == "destination" and labels[4] == namespace
                       and (code_class is None or labels[11].startswith(code_class)))


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
