"""Scale benchmark: one query per rule per window for many namespaces, against a real
Prometheus, next to the per-namespace query loop on the same data.

A night upgrades hundreds of namespaces; a query per namespace per rule per window is what
brings a shared Prometheus (or Thanos/Mimir) to its knees at 1 a.m. This writes seeded
Istio history for N restarted namespaces plus a few never-restarted controls, backfills
it, starts Prometheus, then runs ``service.analysis.analyze_restart`` twice: once for all
namespaces (batched) and once per namespace (the loop), and compares queries, seconds and
verdicts.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from analyzer.adapters.prometheus import PrometheusSource
from analyzer.bench.judges import default_rules
from analyzer.bench.scenarios import ISTIO_BUCKETS, _bucket_probabilities
from analyzer.core.verdicts import NamespaceVerdict
from analyzer.core.windows import RestartWindows
from analyzer.lab import local_servers
from analyzer.service.analysis import AnalysisRequest, analyze_restart
from analyzer.settings import PrometheusSettings

NAMESPACE_LABEL = "destination_workload_namespace"
SCRAPE_SECONDS = 15
CONTROLS = 10
BEFORE = timedelta(minutes=10)
SETTLE = timedelta(minutes=2)
AFTER = timedelta(minutes=10)
STEP = timedelta(minutes=1)


@dataclass(frozen=True)
class ScaleHistory:
    """The written history: namespaces judged, controls, and the restart time."""

    judged: tuple[str, ...]
    controls: tuple[str, ...]
    restarted_at: datetime
    text: str


def _label(value: float) -> str:
    return "+Inf" if math.isinf(value) else f"{value:g}"


def history(namespaces: int, seed: int = 7, now: datetime | None = None) -> ScaleHistory:
    """OpenMetrics history around one restart: healthy namespaces, and every fifth one with
    a regression (errors ×5, latency ×1.8, or traffic ÷10) after the restart."""
    rng = np.random.default_rng(seed)
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    restarted_at = now - timedelta(hours=1)
    start = restarted_at - BEFORE - timedelta(minutes=3)
    end = restarted_at + SETTLE + AFTER + timedelta(minutes=3)
    times = np.arange(start.timestamp(), end.timestamp() + 1, SCRAPE_SECONDS)
    after_mask = times >= restarted_at.timestamp()
    judged = tuple(f"team-{i:04d}" for i in range(namespaces))
    controls = tuple(f"steady-{i:02d}" for i in range(CONTROLS))
    requests_lines: list[str] = []
    bucket_lines: list[str] = []
    count_lines: list[str] = []
    sum_lines: list[str] = []
    for index, name in enumerate(judged + controls):
        rps = float(math.exp(rng.uniform(math.log(2), math.log(80))))
        error_rate = float(rng.uniform(0.001, 0.006))
        median, sigma = float(rng.uniform(8, 60)), float(rng.uniform(0.5, 0.8))
        kind = index % 20 if name in judged else -1
        rates = np.full(len(times), rps)
        errors = np.full(len(times), error_rate)
        medians = np.full(len(times), median)
        if kind == 5:
            errors[after_mask] *= 5
        elif kind == 10:
            medians[after_mask] *= 1.8
        elif kind == 15:
            rates[after_mask] /= 10
        requests = rng.poisson(rates * SCRAPE_SECONDS)
        bad = rng.binomial(requests, errors)
        good = requests - bad
        per_bucket = np.array(
            [
                rng.multinomial(n, _bucket_probabilities(m, sigma))
                for n, m in zip(requests, medians, strict=True)
            ]
        )
        cumulative_buckets = np.cumsum(np.cumsum(per_bucket, axis=1), axis=0)
        good_total, bad_total = np.cumsum(good), np.cumsum(bad)
        base = f'reporter="destination",{NAMESPACE_LABEL}="{name}"'
        for code, series in (("200", good_total), ("503", bad_total)):
            requests_lines += [
                f'istio_requests_total{{{base},response_code="{code}"}} {v} {t:.0f}'
                for t, v in zip(times, series, strict=True)
            ]
        for column, bound in enumerate(ISTIO_BUCKETS):
            bucket_lines += [
                f'istio_request_duration_milliseconds_bucket{{{base},le="{_label(bound)}"}} {v} {t:.0f}'
                for t, v in zip(times, cumulative_buckets[:, column], strict=True)
            ]
        count_lines += [
            f"istio_request_duration_milliseconds_count{{{base}}} {v} {t:.0f}"
            for t, v in zip(times, cumulative_buckets[:, -1], strict=True)
        ]
        sum_lines += [
            f"istio_request_duration_milliseconds_sum{{{base}}} {v * median:.0f} {t:.0f}"
            for t, v in zip(times, cumulative_buckets[:, -1], strict=True)
        ]
    text = "\n".join(
        [
            "# TYPE istio_requests counter",
            *requests_lines,
            "# TYPE istio_request_duration_milliseconds histogram",
            *bucket_lines,
            *count_lines,
            *sum_lines,
            "# EOF",
            "",
        ]
    )
    return ScaleHistory(judged, controls, restarted_at, text)


def _same(a: dict[str, NamespaceVerdict], b: dict[str, NamespaceVerdict]) -> bool:
    if set(a) != set(b):
        return False
    for name, verdict in a.items():
        other = b[name]
        if verdict.verdict is not other.verdict:
            return False
        if [(r.rule, r.verdict) for r in verdict.rules] != [
            (r.rule, r.verdict) for r in other.rules
        ]:
            return False
    return True


def run_against(url: str, scale: ScaleHistory) -> dict:
    """Judge every namespace batched, then one by one; compare."""
    rules = default_rules()
    windows = RestartWindows.around(
        scale.restarted_at, before=BEFORE, settle=SETTLE, after=AFTER, step=STEP
    )
    source = PrometheusSource(PrometheusSettings(url=url))
    try:
        started = time.perf_counter()
        batched = analyze_restart(
            source,
            rules,
            AnalysisRequest(judged=scale.judged, controls=scale.controls, windows=windows),
        )
        seconds_batched = time.perf_counter() - started
        queries_batched = source.queries_sent
        looped: dict[str, NamespaceVerdict] = {}
        started = time.perf_counter()
        for name in scale.judged:
            outcome = analyze_restart(
                source,
                rules,
                AnalysisRequest(judged=(name,), controls=scale.controls, windows=windows),
            )
            looped.update(outcome.verdicts)
        seconds_loop = time.perf_counter() - started
        queries_loop = source.queries_sent - queries_batched
    finally:
        source.close()
    counts: dict[str, int] = {}
    for verdict in batched.verdicts.values():
        counts[verdict.verdict.value] = counts.get(verdict.verdict.value, 0) + 1
    return {
        "namespaces": len(scale.judged),
        "queries_batched": queries_batched,
        "queries_per_namespace": queries_loop,
        "seconds_batched": seconds_batched,
        "seconds_per_namespace": seconds_loop,
        "same_verdicts": _same(batched.verdicts, looped),
        "rules": len(rules),
        "controls": len(scale.controls),
        "verdicts": counts,
    }


def run(namespaces: int, seed: int = 7, status: Callable[[str], None] | None = None) -> dict:
    """The whole scale benchmark: write history, backfill, start Prometheus, measure, stop."""
    say = status or (lambda _message: None)
    local_servers.binary("prometheus")
    local_servers.binary("promtool")
    with tempfile.TemporaryDirectory(prefix="canary-bench-") as directory:
        work_dir = Path(directory)
        say(f"writing history for {namespaces} namespaces")
        scale = history(namespaces, seed)
        say("backfilling with promtool")
        local_servers.backfill(scale.text, work_dir)
        say("starting Prometheus")
        with local_servers.start_prometheus(work_dir, scrape_interval="15s") as server:
            say("judging: batched, then one namespace at a time")
            return run_against(server.url, scale)
