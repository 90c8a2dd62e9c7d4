"""The benchmark's one table: every judge, every traffic level, the physical limit beside.

Rows per judge: a summary (false rollbacks and inconclusive over all traffic, detection over
scenarios with ≥ 10 rps — the JSON contract's numbers), then one row per canary traffic
level. The "limit +1pp" column is the exact power of the ideal test on the same scenarios
(its normal approximation beside it), so a judge's errors+1pp detection can be read
against it on the same line. The limit study, when run, gets a table of its own: our
judge's detection per traffic level on many more scenarios, as a share of the limit.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from analyzer.bench.runner import BenchResult
from analyzer.bench.scenarios import REGRESSIONS, TRAFFIC_LEVELS


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def judge_table(result: BenchResult) -> Table:
    data = result.to_dict()
    config = data["config"]
    table = Table(
        title=(
            f"Verdict quality: {config['scenarios']} scenarios, seed {config['seed']}, "
            "windows 10m/10m, drift ×0.5-1.5 on every namespace"
        ),
        caption=(
            f"false rollback = FAIL on healthy restarts · detection = FAIL on regressions "
            f"(summary rows: ≥ {config['detection_min_rps']:g} rps) · limit +1pp = power of an "
            f"ideal one-sided two-proportion z test (α = 1 %, no drift) on the same scenarios, exact "
            f"(normal approx. beside it) · "
            + (
                f"ours: α = {result.alpha:.2%} per test (night budget "
                f"{config['night_budget']:.0%} over {config['night_namespaces']} namespaces × 4 rules)"
                if result.alpha is not None
                else "ours: α = 1 % per test (the default rules' confidence 99 %)"
            )
        ),
        show_lines=False,
    )
    table.add_column("judge")
    table.add_column("traffic")
    table.add_column("limit +1pp", justify="right", style="dim")
    table.add_column("normal approx.", justify="right", style="dim")
    table.add_column("false rollback", justify="right")
    table.add_column("inconclusive", justify="right")
    for kind in REGRESSIONS:
        table.add_column(kind, justify="right")
    limits = data["physical_limit"]["by_traffic"]
    normal = data["physical_limit"]["normal_approximation"]
    for name, judge in data["judges"].items():
        table.add_row(
            f"[bold]{name}[/bold]",
            "all (det ≥10 rps)",
            "",
            "",
            _pct(judge["false_rollback_rate"]),
            _pct(judge["inconclusive_rate"]),
            *(_pct(judge["detection"][kind]) for kind in REGRESSIONS),
            style="bold",
        )
        levels = [f"{level:g}rps" for level in TRAFFIC_LEVELS]
        for index, key in enumerate(levels):
            row = judge["by_traffic"][key]
            table.add_row(
                "",
                key,
                _pct(limits.get(key)),
                _pct(normal.get(key)),
                _pct(row["false_rollback_rate"]),
                _pct(row["inconclusive_rate"]),
                *(_pct(row["detection"][kind]) for kind in REGRESSIONS),
                end_section=index == len(levels) - 1,
            )
    return table


def limit_table(result: BenchResult) -> Table:
    """Our judge against the physical limit, traffic level by traffic level."""
    data = result.to_dict()
    per_level = data["config"]["limit_scenarios_per_level"]
    table = Table(
        title=f"Ours against the physical limit: errors +1 pp, {per_level} scenarios per level "
        "(half healthy), drift on",
        caption="limit = exact power of the ideal z test (α = 1 %, no drift) on the same "
        "scenarios; share = our detection ÷ limit (its 95 % interval in brackets); normal approx. = the same test's power as "
        "the normal approximation gives it, which overstates it at a few errors per window; "
        "best unbiased test = the most powerful unbiased test at α = 1 % (randomised "
        "conditional test), which no test of that size beats. Where these are near zero no "
        "test can tell a regression from noise, and ours answers INCONCLUSIVE, not PASS.",
    )
    for column in (
        "traffic",
        "ours: detection",
        "95% interval",
        "limit",
        "share of limit",
        "normal approx.",
        "share of it",
        "best unbiased test",
        "false rollback",
        "inconclusive",
    ):
        table.add_column(column, justify="left" if column == "traffic" else "right")
    for key, row in data["limit_study"].items():
        table.add_row(
            key,
            _pct(row["detection"]),
            "—"
            if row["detection_95ci"] is None
            else f"{_pct(row['detection_95ci'][0])}–{_pct(row['detection_95ci'][1])}",
            _pct(row["limit"]),
            _share(row["share_of_limit"], row.get("share_of_limit_95ci")),
            _pct(row["limit_normal_approximation"]),
            _ratio(row["share_of_normal_limit"]),
            _pct(row["best_unbiased_test"]),
            _pct(row["false_rollback_rate"]),
            _pct(row["inconclusive_rate"]),
        )
    return table


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _share(value: float | None, interval: list[float | None] | None) -> str:
    """``0.98× (0.95–1.00)``: a share of the limit with its 95 % interval."""
    if value is None or not interval or None in interval:
        return _ratio(value)
    return f"{_ratio(value)} ({interval[0]:.2f}–{interval[1]:.2f})"


def night_table(result: dict) -> Table:
    """How seeded whole nights ended, at each rule's own alpha and with the night budget."""
    config = result["config"]
    low, high = config["traffic_rps"]
    regression = config["canary_regression"]
    injected = (
        f"canary {regression}"
        if regression
        else f"{config['regression']} in {config['regression_in']}"
        if config.get("regression")
        else "every namespace healthy"
    )
    table = Table(
        title=(
            f"Whole nights: {result['nights']} per row, {config['namespaces']} namespaces "
            f"({low:g}–{high:g} rps, {config.get('traffic_mix', 'log-uniform')}), waves "
            f"{config['waves']}, up to {config['max_extensions']} extensions, order "
            f"{config.get('order', 'given')}, quiet policy {config.get('quiet', 'hold')}, "
            f"{injected}, seed {config['seed']}"
        ),
        caption="rolled back = a FAIL in some wave; held = still inconclusive after the last "
        "extension (a person decides); 95 % intervals in brackets; minutes = each wave's 2-min "
        "settle plus the after-window it was judged on. Same nights in every row.",
    )
    for column in (
        "α",
        "promoted",
        "rolled back",
        "held",
        "looks per night",
        "minutes per night (median, p90)",
        "judged by (namespaces of promoted nights)",
        "on the bad revision at rollback (median)",
    ):
        table.add_column(column, justify="left" if column == "α" else "right")
    labels = {
        "rules_alpha": "each rule's own (1 % per test)",
        "night_budget": f"night budget {config['night_budget']:.0%}"
        if config["night_budget"]
        else "",
        "anytime": "anytime-valid looks every minute (each rule's own α)",
        "anytime_night_budget": f"anytime-valid looks, night budget {config['night_budget']:.0%} "
        "(even split, no share per look)"
        if config["night_budget"]
        else "",
    }
    for key, row in result["runs"].items():
        table.add_row(
            labels[key],
            *(
                f"{_pct(row[f'{outcome}_rate'])} "
                f"({_pct(row[f'{outcome}_95ci'][0])}–{_pct(row[f'{outcome}_95ci'][1])})"
                for outcome in ("promoted", "rolled_back", "held")
            ),
            f"{row['looks_per_night']:.2f}",
            "—"
            if row.get("minutes_median") is None
            else f"{row['minutes_median']:g}, {row['minutes_p90']:g}",
            ", ".join(
                f"{k} {v}" for k, v in sorted((row.get("evidence_per_namespace") or {}).items())
            )
            or "—",
            "—"
            if row.get("moved_at_rollback_median") is None
            else f"{row['moved_at_rollback_median']:g}",
        )
    return table


def scale_table(result: dict) -> Table:
    table = Table(title=f"Scale: {result['namespaces']} namespaces × the default rules")
    table.add_column("")
    table.add_column("queries", justify="right")
    table.add_column("seconds to all verdicts", justify="right")
    table.add_row(
        "batched (one query per rule per window)",
        str(result["queries_batched"]),
        f"{result['seconds_batched']:.2f}",
    )
    table.add_row(
        "per-namespace loop",
        str(result["queries_per_namespace"]),
        f"{result['seconds_per_namespace']:.2f}",
    )
    table.caption = (
        f"{result['queries_per_namespace'] / max(result['queries_batched'], 1):.0f}× fewer "
        f"queries; same verdicts: {result['same_verdicts']}"
    )
    return table


def print_table(table: Table, console: Console | None = None) -> None:
    (console or Console(width=200)).print(table)


def _interval(interval: list[float] | None) -> str:
    return "—" if not interval else f"{_pct(interval[0])}–{_pct(interval[1])}"


def calibration_table(result: BenchResult) -> Table:
    """False FAILs on healthy real-shaped restarts, per rule and cell, against each α."""
    data = result.calibration or {}
    cells = data.get("cells", {})
    rules = list(next(iter(cells.values()))["rules"]) if cells else []
    table = Table(
        title=(
            f"Calibration on real-shaped data: {data.get('scenarios_per_cell', 0)} healthy "
            f"restarts per cell, seed {data.get('seed')}, canary p99 in "
            f"{data.get('canary_p99_ms', ['?', '?'])[0]:g}–{data.get('canary_p99_ms', ['?', '?'])[1]:g}"
            " ms, latency drift ×0.9–1.2 on every namespace, minute-to-minute latency wobble"
        ),
        caption="false FAIL = FAIL on a healthy restart, per rule (its 95 % Wilson interval "
        "in brackets), to be read against the rule's α; istio-default = Envoy's default buckets "
        "(…, 50, 100, 250, 500, … ms), istio-annotation-example = 1, 5, 10, 50, 100, 500, "
        "1000, 5000, 10000 ms; log-t3 = Student t (3 d.f.) on the log scale, a power-law tail; "
        "last row: how often the test of no change at all (statistic.p_value_no_change) "
        "rejects at α on these healthy restarts — ≈ α when the standard errors are honest.",
    )
    table.add_column("buckets / latency / traffic")
    for rule in rules:
        table.add_column(
            f"{rule} (α {_pct(cells[next(iter(cells))]['rules'][rule]['alpha'])})", justify="right"
        )
    table.add_column("namespace", justify="right")
    for key, cell in cells.items():
        table.add_row(
            key,
            *(
                f"{_pct(cell['rules'][r]['false_fail_rate'])} ({_interval(cell['rules'][r]['false_fail_95ci'])})"
                for r in rules
            ),
            f"{_pct(cell['namespace_false_fail_rate'])} ({_interval(cell['namespace_false_fail_95ci'])})",
        )
    overall = data.get("overall", {})
    if overall:
        table.add_row(
            "[bold]all cells[/bold]",
            *(
                f"{_pct(overall[r]['false_fail_rate'])} ({_interval(overall[r]['false_fail_95ci'])})"
                for r in rules
            ),
            "",
            style="bold",
        )
        table.add_row(
            "all cells: test of no change rejects",
            *(
                f"{_pct(overall[r]['no_change_rejection_rate'])} "
                f"({_interval(overall[r]['no_change_rejection_95ci'])})"
                for r in rules
            ),
            "",
        )
    return table


def decision_table(result: BenchResult) -> Table:
    """Minutes from restart to verdict: fixed windows against anytime-valid looks."""
    data = result.time_to_decision or {}
    table = Table(
        title=(
            f"Time to decision: {data.get('restarts_per_case', 0)} restarts per case, seed "
            f"{data.get('seed')}, same restarts both ways, each rule at its own α"
        ),
        caption="minutes from the restart (2 min settle + after-window judged) to the case's "
        "verdict (FAIL for a regression, PASS for a healthy namespace); fixed = judge at 10 "
        "min, extend to 20 and 30 when inconclusive; anytime = a look after every minute "
        "(confidence sequence), stop at the first PASS or FAIL; shares within 30 minutes. "
        "ceiling (p99 cases): the most a judge honouring the +20 % allowance detects at one "
        "look of 10 / 30 minutes — the chance that the raw (unbucketed) sample p99's change, "
        "drift known, lands beyond the allowance — with the p99 rule's own before-window "
        f"({_before_minutes(data)}) and, in brackets, with a 10-minute one.",
    )
    for column in ("case", "judging", "FAIL", "PASS", "median min", "p90 min", "ceiling"):
        table.add_column(column, justify="left" if column in ("case", "judging") else "right")
    for name, case in data.get("cases", {}).items():
        for index, (label, key) in enumerate(
            (("fixed windows", "fixed_windows"), ("anytime-valid", "anytime_valid"))
        ):
            row = case[key]
            table.add_row(
                name if index == 0 else "",
                label,
                f"{_pct(row['fail_rate'])} ({_interval(row['fail_95ci'])})",
                f"{_pct(row['pass_rate'])} ({_interval(row['pass_95ci'])})",
                "—" if row["minutes_median"] is None else f"{row['minutes_median']:g}",
                "—" if row["minutes_p90"] is None else f"{row['minutes_p90']:g}",
                _ceiling(
                    case.get("allowance_ceiling"), index, case.get("allowance_ceiling_10min_before")
                ),
                end_section=index == 1,
            )
    return table


def _ceiling(ceiling: dict | None, index: int, short: dict | None = None) -> str:
    """The one-look ceiling of a p99 case: 10 minutes on the fixed row, 30 on the other;
    ``short``: the same with a 10-minute before-window, in brackets."""
    if not ceiling:
        return ""
    key = "10min" if index == 0 else "30min"
    text = f"{_pct(ceiling[key])} ({key[:-3]} min)"
    return f"{text} [{_pct(short[key])}]" if short else text


def _before_minutes(data: dict) -> str:
    minutes = data.get("before_minutes") or {}
    shown = minutes.get("latency-p99")
    return "10 min" if shown is None else f"{shown} min"


def allowance_table(result: BenchResult) -> Table:
    """Errors +0.5 pp under the shipped rule and a rule allowing less, beside Kayenta-style."""
    data = result.allowance_study or {}
    scenarios = data.get("scenarios", {})
    table = Table(
        title=(
            f"Errors +0.5 pp against a rule allowing +{data.get('allowance', 0) * 100:g} pp: "
            f"{scenarios.get('regression', 0)} regressions and {scenarios.get('healthy', 0)} "
            f"healthy at {', '.join(f'{level:g}' for level in data.get('levels_rps', []))} rps, "
            f"seed {data.get('seed')}, same scenarios for every judge"
        ),
        caption="the shipped error-rate rule allows +0.5 pp, so +0.5 pp is at its allowance; "
        "the Kayenta-style judge reads only the relative +50 % and judges alike under both "
        "rules. False FAIL: healthy namespaces failed on any rule. 95 % Wilson intervals.",
    )
    for column in ("judge", "detection", "false FAIL"):
        table.add_column(column, justify="left" if column == "judge" else "right")
    for name, row in data.get("judges", {}).items():
        table.add_row(
            name,
            f"{_pct(row['detection']['rate'])} ({_interval(row['detection']['95ci'])})",
            f"{_pct(row['false_fail']['rate'])} ({_interval(row['false_fail']['95ci'])})",
        )
    return table
