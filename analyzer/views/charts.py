"""Charts of one rule's verdict as inline SVG (matplotlib, no JavaScript, no network).

One chart per rule and namespace: the canary's per-step values before and after the restart,
the control namespaces' band (lowest to highest per step), the judged before/after values,
the allowed limit and any absolute ceiling or floor. The settle period between the windows
is shaded so the gap in the line explains itself.

The time axis labels its ticks at the scale of the span plotted (``14:07:05`` for a window of
seconds, ``14:05`` for an hour, the day for days), the date written once at its right end.
The judged values are labelled lines over their windows; ``chart_caption`` says how each is
read (the judge sums a window, then takes one ratio or quantile; the line is per step).

Charts are drawn on a bare ``Figure`` (no pyplot global state), so rendering is safe from
any thread. Element ids inside each SVG get a unique prefix: many charts inline in one HTML
page must not share ids (clip paths and glyphs are referenced by id).
"""

from __future__ import annotations

import io
import itertools
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import matplotlib.dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from analyzer.core.formatting import Style, format_value
from analyzer.core.verdicts import RuleResult

#: Colours per verdict of the canary's after line (also used by the HTML report).
VERDICT_COLOURS = {
    "pass": "#1b7f3b",
    "fail": "#c62828",
    "inconclusive": "#b26a00",
    "error": "#6a1b9a",
}
BEFORE_COLOUR = "#3465a4"
BAND_COLOUR = "#9e9e9e"

_chart_ids = itertools.count(1)


def rule_unit(rule: RuleResult) -> str:
    """Best guess of a rule's unit from what its result carries: ratio, ms, rps or ''."""
    test = str(rule.statistic.get("test", ""))
    threshold = rule.threshold
    evidence = rule.evidence
    if "error counts" in test or "proportion" in test:
        return "ratio"
    if "quantile" in threshold or "tail_events" in evidence or " p99" in test or "log p" in test:
        return "ms"
    if "Poisson" in test:
        return "rps"
    reason = rule.reason
    if re.search(r"\d%\s*→", reason):
        return "ratio"
    if re.search(r"\d ms\s*→", reason):
        return "ms"
    if "rps" in reason:
        return "rps"
    return ""


def allowed_limits(rule: RuleResult, unit: str) -> list[tuple[float, str]]:
    """Lines for the chart: the allowed limit (before value plus the allowance; a control
    drift, when controls were used, moves the real limit with it) and any ceiling or floor."""
    threshold = rule.threshold
    before = rule.before
    lines: list[tuple[float, str]] = []
    direction = threshold.get("direction", "increase")
    signs = {"increase": (1,), "decrease": (-1,), "both": (1, -1)}.get(direction, (1,))
    if isinstance(before, int | float) and math.isfinite(before):
        relative = threshold.get("allowed_relative")
        absolute = threshold.get("allowed_absolute")
        for sign in signs:
            limit = None
            if unit == "ms" or "quantile" in threshold:
                candidates = []
                if relative is not None:
                    candidates.append(before * (1 + sign * relative))
                if absolute is not None:
                    candidates.append(before + sign * absolute)
                if candidates:  # a regression must exceed every allowance given
                    limit = max(candidates) if sign > 0 else min(candidates)
            elif unit == "rps":
                if relative is not None:
                    limit = before * (1 + sign * relative)
            elif isinstance(threshold.get("allowed_change"), int | float):
                limit = before + sign * threshold["allowed_change"]
            if limit is not None and math.isfinite(limit):
                lines.append((limit, "allowed limit"))
    for key in ("ceiling", "floor"):
        value = threshold.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            lines.append((float(value), key))
    return lines


def chart_caption(rule: RuleResult, unit: str) -> str:
    """What the chart's line and its dotted judged values each show, and so why they differ:
    the judge reads each window whole (sums, then one ratio or quantile), the line per step.
    Empty when the chart has no line to explain."""
    if not (_points(rule.series.get("before")) or _points(rule.series.get("after"))):
        return ""
    evidence = rule.evidence
    if unit == "ratio":
        return (
            "Line: the error ratio of each step. Judged (dotted): errors ÷ requests summed "
            "over the whole window, so busy steps weigh more than quiet ones; the mean of "
            "the plotted points can differ."
        )
    if unit == "ms":
        quantile = rule.threshold.get("quantile")
        name = f"p{quantile * 100:g}" if isinstance(quantile, int | float) else "the quantile"
        return (
            f"Line: {name} of each step's histogram. Judged (dotted): {name} of the buckets "
            "summed over the whole window, not an average of the per-step values."
        )
    if unit == "rps":
        return (
            "Line: the request rate of each step. Judged (dotted): the window's requests "
            "divided by its length."
        )
    if "before_points" in evidence or "after_points" in evidence:
        return "Line: the value of each step. Judged (dotted): the median of the window's steps."
    return "Line: the value of each step. Judged (dotted): the value the judge read per window."


def _points(raw: Any) -> list[list[float]]:
    if not isinstance(raw, Sequence):
        return []
    usable = []
    for point in raw:
        if isinstance(point, Sequence) and len(point) >= 2:
            try:
                values = [float(v) for v in point]
            except (TypeError, ValueError):
                continue
            if all(math.isfinite(v) for v in values):
                usable.append(values)
    return usable


def _per_second(series: dict[str, list[list[float]]], before: Any) -> bool:
    """Volume rules chart per-step increases while their values are rates: convert when the
    per-second reading of the points matches the judged before value better."""
    points = series["before"] or series["after"]
    times = [p[0] for p in points]
    if len(times) < 2 or not isinstance(before, int | float) or before <= 0:
        return False
    step = statistics.median(b - a for a, b in itertools.pairwise(times))
    level = statistics.median(p[1] for p in points)
    if step <= 1 or level <= 0:
        return False
    return abs(math.log(level / step / before)) < abs(math.log(level / before))


def _when(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def rule_chart_svg(rule: RuleResult, windows: Mapping[str, Any] | None = None) -> str:
    """The chart of one rule result as an inline ``<svg>``.

    ``windows`` is ``RestartWindows.to_dict()`` when known (restart line, settle shading).
    Without points the chart says "no data" — it is still an SVG."""
    unit = rule_unit(rule)
    raw = rule.series
    series = {
        key: _points(raw.get(key))
        for key in ("before", "after", "controls_before", "controls_after")
    }
    if _per_second(series, rule.before):
        times = [p[0] for p in series["before"] or series["after"]]
        step = statistics.median(b - a for a, b in itertools.pairwise(times))
        series = {
            key: [[p[0], *(v / step for v in p[1:])] for p in points]
            for key, points in series.items()
        }
    verdict = rule.verdict.value
    colour = VERDICT_COLOURS.get(verdict, "#333333")

    figure = Figure(figsize=(8.2, 3.1), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.grid(True, color="#e3e3e3", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)

    anything = any(series.values())
    if not anything:
        axes.text(
            0.5,
            0.5,
            "no data in either window",
            ha="center",
            va="center",
            transform=axes.transAxes,
            fontsize=12,
            color="#555555",
        )
        axes.set_xticks([])
        axes.set_yticks([])
    else:
        band_labelled = False
        for key in ("controls_before", "controls_after"):
            band = series[key]
            if band and len(band[0]) >= 3:
                axes.fill_between(
                    [_when(p[0]) for p in band],
                    [p[1] for p in band],
                    [p[2] for p in band],
                    color=BAND_COLOUR,
                    alpha=0.28,
                    linewidth=0,
                    step=None,
                    label=None if band_labelled else "controls (lowest–highest)",
                )
                band_labelled = True
        before_points, after_points = series["before"], series["after"]
        if before_points:
            axes.plot(
                [_when(p[0]) for p in before_points],
                [p[1] for p in before_points],
                color=BEFORE_COLOUR,
                linewidth=1.6,
                marker="o",
                markersize=2.5,
                label="canary before",
            )
        if after_points:
            axes.plot(
                [_when(p[0]) for p in after_points],
                [p[1] for p in after_points],
                color=colour,
                linewidth=2.2,
                marker="o",
                markersize=2.5,
                label=f"canary after ({verdict or 'n/a'})",
            )
        _judged_levels(axes, rule, unit, before_points, after_points, colour)
        _restart_marks(axes, windows, before_points, after_points)
        start = min(p[0] for points in series.values() for p in points)
        end = max(p[0] for points in series.values() for p in points)
        first_after = after_points[0][0] if after_points else start
        for value, label in allowed_limits(rule, unit):
            is_limit = label == "allowed limit"
            axes.hlines(
                value,
                _when(first_after if is_limit else start),
                _when(end),
                colors="#d32f2f" if is_limit else "#000000",
                linestyles="--" if is_limit else "-.",
                linewidth=1.3,
                label=f"{label} {format_value(value, unit)}",
            )
        _time_axis(axes)
        axes.yaxis.set_major_formatter(
            FuncFormatter(lambda v, _pos: format_value(v, unit, Style.TICK))
        )
        axes.tick_params(labelsize=8)
        axes.xaxis.get_offset_text().set_fontsize(8)
        figure.legend(fontsize=7.5, loc="outside lower center", ncols=4, frameon=False)
        axes.margins(y=0.15)
    title = f"{rule.rule or '?'} — {rule.namespace}".rstrip(" —")
    axes.set_title(title, fontsize=10, loc="left", color="#222222")

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _unique_ids(buffer.getvalue(), f"c{next(_chart_ids)}-")


#: Tick labels per level of the ticks (years, months, days, hours, minutes, seconds): a night
#: compressed into seconds reads ``14:07:05``, an hour ``14:05``, several days ``Mar 02``.
_TICK_FORMATS = ["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%H:%M:%S"]
#: The same at a boundary of the level above (midnight on an hourly axis shows its date).
_ZERO_FORMATS = ["", "%Y", "%b", "%b %d", "%H:%M", "%H:%M:%S"]
#: What the ticks leave out, written once at the axis's right end.
_OFFSET_FORMATS = [
    "UTC", "%Y UTC", "%Y-%m UTC", "%Y-%m-%d UTC", "%Y-%m-%d UTC", "%Y-%m-%d UTC",
]  # fmt: skip


def _time_axis(axes) -> None:
    """Ticks at the scale of the span plotted (matplotlib's locator picks seconds, minutes,
    hours or days; the concise formatter writes each level's label and the date once)."""
    locator = mdates.AutoDateLocator(tz=UTC, minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(
            locator,
            tz=UTC,
            formats=_TICK_FORMATS,
            zero_formats=_ZERO_FORMATS,
            offset_formats=_OFFSET_FORMATS,
        )
    )


def _judged_levels(axes, rule: RuleResult, unit: str, before_points, after_points, colour):
    """The judged values as dotted lines over their windows, each labelled with its value:
    the judge reads a window as a whole (``chart_caption`` says how), the line per step."""
    for value, points, line_colour, name in (
        (rule.before, before_points, BEFORE_COLOUR, "judged before"),
        (rule.after, after_points, colour, "judged after"),
    ):
        if isinstance(value, int | float) and math.isfinite(value) and points:
            start, end = _when(points[0][0]), _when(points[-1][0])
            axes.hlines(
                value,
                start,
                end,
                colors=line_colour,
                linestyles=":",
                linewidth=1.4,
                label=None if name == "judged before" else "judged value of each window (dotted)",
            )
            axes.annotate(
                f"{name} {format_value(value, unit)}",
                (start, value),
                xytext=(2, 3),
                textcoords="offset points",
                fontsize=7.5,
                color=line_colour,
                bbox={
                    "boxstyle": "square,pad=0.1",
                    "facecolor": "white",
                    "edgecolor": "none",
                    "alpha": 0.75,
                },
            )


def _restart_marks(axes, windows, before_points, after_points) -> None:
    """The restart as a vertical line and the settle period (never judged) shaded."""
    restart = _parse_time((windows or {}).get("restarted_at"))
    after_start = _parse_time(((windows or {}).get("after") or {}).get("start"))
    if restart is None and before_points and after_points:
        restart = _when(before_points[-1][0])
    if after_start is None and after_points:
        after_start = _when(after_points[0][0])
    if restart is not None:
        axes.axvline(restart, color="#444444", linewidth=1.0, linestyle="-")
        axes.annotate(
            "restart",
            (restart, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -10),
            textcoords="offset points",
            fontsize=7.5,
            color="#444444",
        )
        if after_start is not None and after_start > restart:
            axes.axvspan(restart, after_start, color="#fff3cd", alpha=0.8, linewidth=0)


_ID = re.compile(r'\bid="([^"]+)"')


def _unique_ids(svg: str, prefix: str) -> str:
    """Prefix every id (and every reference to it) so several SVGs can share one page."""
    svg = svg[svg.index("<svg") :]
    ids = set(_ID.findall(svg))
    if not ids:
        return svg

    def rename(match: re.Match) -> str:
        whole, name = match.group(0), match.group(1)
        if name not in ids:
            return whole
        start = match.start(1) - match.start(0)
        return whole[:start] + prefix + name + whole[start + len(name) :]

    svg = _ID.sub(rename, svg)
    svg = re.sub(r"url\(#([^)]+)\)", rename, svg)
    svg = re.sub(r'href="#([^"]+)"', rename, svg)
    return svg
