"""``bench memory`` in its smallest configuration: one fresh simulated mesh and ``serve``,
two idle loop passes; the JSON contract holds and the figure is a real reading of the
process (no threshold: the figure is the benchmark's to print, not the test's to judge)."""

from __future__ import annotations

import json

from analyzer.cli import main


def test_bench_memory_reads_an_idle_serve(capsys) -> None:
    assert main(["bench", "memory", "--runs", "1", "--passes", "2", "--output", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"scenario", "runs", "idle_passes", "rss_mb", "mean_mb", "interval95_mb"}
    assert result["runs"] == 1 and result["idle_passes"] == 2
    assert len(result["rss_mb"]) == 1 and result["rss_mb"][0] > 0
    assert result["interval95_mb"] == [result["mean_mb"], result["mean_mb"]]
