"""Per-namespace window data extracted from query results: what the judge judges.

One query per rule per window answers for every namespace at once; this module splits the
answer by namespace into plain values (counts, bucket counts, value series). Pure: series in,
observations out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from analyzer.core.ports import Series
from analyzer.core.rules import Rule, RuleType
from analyzer.core.templates import render_query

#: Label that tells numerator from denominator series in a combined ratio query.
ROLE_LABEL = "canary_analyzer_role"


@dataclass(frozen=True)
class RatioCounts:
    """Counts of a ratio rule over one window: ``bad`` events out of ``total``."""

    bad: float
    total: float
    points: tuple[tuple[float, float], ...] = ()  # (time, ratio) per step, for charts

    @property
    def ratio(self) -> float | None:
        return self.bad / self.total if self.total > 0 else None


@dataclass(frozen=True)
class BucketCounts:
    """A histogram over one window: cumulative counts per upper bound (``+Inf`` last)."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]
    points: tuple[tuple[float, float], ...] = ()  # (time, quantile of that step) for charts
    #: cumulative counts per step (same bounds): how bursty the tail is, minute to minute
    steps: tuple[tuple[float, ...], ...] = ()

    @property
    def total(self) -> float:
        return self.cumulative[-1] if self.cumulative else 0.0


@dataclass(frozen=True)
class VolumeCount:
    """A counter's total over one window of ``seconds``."""

    count: float
    seconds: float
    points: tuple[tuple[float, float], ...] = ()  # (time, increase) per step

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ValueSeries:
    """Values of a gauge-like series, one per step."""

    values: tuple[float, ...]
    points: tuple[tuple[float, float], ...] = ()


Observation = RatioCounts | BucketCounts | VolumeCount | ValueSeries


def rule_query(rule: Rule, namespace_label: str, namespaces: Iterable[str], step: timedelta) -> str:
    """The ONE PromQL query that answers ``rule`` for every namespace in one window.

    A ratio rule's numerator and denominator travel in one query, told apart by a role
    label added with ``label_replace``."""
    names = list(namespaces)

    def render(template: str) -> str:
        return render_query(template, namespace_label=namespace_label, namespaces=names, step=step)

    spec = rule.spec
    if spec.type is RuleType.RATIO:
        parts = [
            f'label_replace(({render(spec.numerator or "")}), "{ROLE_LABEL}", "numerator", "", "")',
            f'label_replace(({render(spec.denominator or "")}), "{ROLE_LABEL}", "denominator", '
            '"", "")',
        ]
        return "\n  or\n".join(parts)
    template = spec.buckets if spec.type is RuleType.HISTOGRAM else spec.query
    return render(template or "")


def _finite_points(series: Series) -> list[tuple[float, float]]:
    return [(t, v) for t, v in series.points if not (math.isnan(v) or math.isinf(v))]


def _parse_bound(text: str) -> float:
    return math.inf if text in ("+Inf", "Inf", "inf") else float(text)


def extract_observations(
    rule: Rule, series: Iterable[Series], namespace_label: str, window_seconds: float
) -> dict[str, Observation]:
    """Split one query's answer into an observation per namespace. Namespaces with no
    series are absent (the judge calls that "no data"); NaN points are dropped."""
    by_namespace: dict[str, list[Series]] = defaultdict(list)
    for item in series:
        namespace = item.labels.get(namespace_label)
        if namespace:
            by_namespace[namespace].append(item)
    kind = rule.spec.type
    extractor = {
        RuleType.RATIO: _ratio,
        RuleType.HISTOGRAM: lambda items: _buckets(items, rule.spec.judge.quantile or 0.99),
        RuleType.VOLUME: lambda items: _volume(items, window_seconds),
        RuleType.VALUE: _values,
    }[kind]
    result: dict[str, Observation] = {}
    for namespace, items in by_namespace.items():
        observation = extractor(items)
        if observation is not None:
            result[namespace] = observation
    return result


def covered_start(series: Iterable[Series], start: float, step: float) -> float | None:
    """Where a window's data begins when the metrics source holds less history than the
    window (a Prometheus started, or keeping data, for less than a rule's long
    before-window): the start of the earliest point's step, when that is more than one step
    after the window's ``start`` (unix seconds); None when the window is covered or there is
    no data at all. Each point covers the step ending at it; a rate over a step needs two
    scrapes, so the first step may be missing from a covered window."""
    first = min((t for item in series for t, _ in _finite_points(item)), default=None)
    if first is None or first - step <= start + step:
        return None
    return first - step


def _sum_by_time(items: Iterable[Series]) -> dict[float, float]:
    totals: dict[float, float] = defaultdict(float)
    for item in items:
        for t, v in _finite_points(item):
            totals[t] += v
    return totals


def _ratio(items: list[Series]) -> RatioCounts | None:
    numerator = _sum_by_time(i for i in items if i.labels.get(ROLE_LABEL) == "numerator")
    denominator = _sum_by_time(i for i in items if i.labels.get(ROLE_LABEL) == "denominator")
    if not denominator:
        return None
    points = tuple(
        (t, numerator.get(t, 0.0) / total) for t, total in sorted(denominator.items()) if total > 0
    )
    return RatioCounts(bad=sum(numerator.values()), total=sum(denominator.values()), points=points)


def _cumulative(per_bound: dict[float, float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Bounds in order with monotonic counts (extrapolated increases can wobble)."""
    bounds = tuple(sorted(per_bound))
    cumulative = []
    running = 0.0
    for bound in bounds:
        running = max(running, per_bound[bound])
        cumulative.append(running)
    return bounds, tuple(cumulative)


def _buckets(items: list[Series], quantile: float) -> BucketCounts | None:
    per_bound: dict[float, float] = defaultdict(float)
    per_step: dict[float, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for item in items:
        bound_text = item.labels.get("le")
        if bound_text is None:
            continue
        bound = _parse_bound(bound_text)
        for t, v in _finite_points(item):
            per_bound[bound] += v
            per_step[t][bound] += v
    if not per_bound or math.inf not in per_bound:
        return None
    points, steps = [], []
    bounds, cumulative = _cumulative(per_bound)
    for t, step_bounds in sorted(per_step.items()):
        if math.inf in step_bounds:
            value = histogram_quantile(quantile, BucketCounts(*_cumulative(step_bounds)))
            if value is not None:
                points.append((t, value))
        steps.append(_cumulative({b: step_bounds.get(b, 0.0) for b in bounds})[1])
    return BucketCounts(bounds, cumulative, tuple(points), tuple(steps))


def _volume(items: list[Series], window_seconds: float) -> VolumeCount | None:
    totals = _sum_by_time(items)
    if not totals:
        return None
    return VolumeCount(sum(totals.values()), window_seconds, tuple(sorted(totals.items())))


def _values(items: list[Series]) -> ValueSeries | None:
    totals = _sum_by_time(items)
    if not totals:
        return None
    ordered = tuple(sorted(totals.items()))
    return ValueSeries(tuple(v for _, v in ordered), ordered)


def histogram_quantile(quantile: float, histogram: BucketCounts) -> float | None:
    """Prometheus' ``histogram_quantile`` on window counts: linear within the bucket, the
    lower bound of the first bucket taken as 0, and the highest finite bound when the
    quantile falls in the ``+Inf`` bucket."""
    total = histogram.total
    if total <= 0:
        return None
    rank = quantile * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in zip(histogram.bounds, histogram.cumulative, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            in_bucket = count - previous_count
            if in_bucket <= 0:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / in_bucket
        previous_bound, previous_count = bound, count
    return previous_bound


def exceedance(histogram: BucketCounts, bound: float) -> float:
    """How many requests took longer than ``bound`` (a bucket bound of the histogram)."""
    below = 0.0
    for upper, count in zip(histogram.bounds, histogram.cumulative, strict=True):
        if upper <= bound:
            below = count
    return histogram.total - below


def bound_at_or_above(histogram: BucketCounts, value: float) -> float | None:
    """The smallest finite bucket bound ≥ ``value`` (None when only ``+Inf`` is above)."""
    for bound in histogram.bounds:
        if bound >= value and not math.isinf(bound):
            return bound
    return None


def control_band(observations: Mapping[str, Observation]) -> tuple[tuple[float, float, float], ...]:
    """Per step, the lowest and highest value among the controls: ``(time, low, high)``."""
    by_time: dict[float, list[float]] = defaultdict(list)
    for observation in observations.values():
        for t, v in observation.points:
            by_time[t].append(v)
    return tuple((t, min(values), max(values)) for t, values in sorted(by_time.items()))
