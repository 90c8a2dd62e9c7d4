"""Memory benchmark: the resident memory of an idle ``serve``, on the simulated mesh.

Why: a service that sits idle most of the day should cost little. What only reports and
pages need (plotting, templates) is loaded when a report is drawn, not when the service
starts; this measures that it stays so. Each run starts ``canary-analyzer sim`` and
``canary-analyzer serve`` as their own processes (the benchmark imports neither), waits
until the service has made a number of loop passes with nothing to do (its heartbeat
metric moves), then reads the serve process's resident set (``VmRSS`` in
``/proc/PID/status``, Linux). Idle ``serve`` never queries Prometheus, so the URL it is
given points at the simulated mesh's metrics endpoint.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from scipy import stats

HEARTBEAT = re.compile(r"^canary_analyzer_heartbeat_timestamp_seconds ([0-9.e+]+)$", re.M)
ENV = {"CANARY_SERVICE__TICK_INTERVAL": "500ms"}


class MemoryBenchError(RuntimeError):
    """A process of the benchmark did not start or did not settle in time."""


@dataclass(frozen=True)
class IdleSample:
    rss_mb: float
    passes: int


def _first_line(process: subprocess.Popen, what: str, prefix: str) -> str:
    line = process.stdout.readline().decode().strip() if process.stdout else ""
    if not line.startswith(prefix):
        process.kill()
        raise MemoryBenchError(f"{what} did not start: {line!r}")
    return line


def rss_mb(pid: int) -> float:
    """The process's resident set in MiB, from ``/proc/PID/status``."""
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB$", text, re.M)
    if found is None:
        raise MemoryBenchError(f"no VmRSS for process {pid}")
    return int(found.group(1)) / 1024


def _heartbeat(url: str) -> float | None:
    try:
        found = HEARTBEAT.search(httpx.get(f"{url}/metrics", timeout=5).text)
    except httpx.HTTPError:
        return None
    return float(found.group(1)) if found else None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def idle_serve(scenario: str, passes: int, timeout: float = 120.0) -> IdleSample:
    """Start the mesh and ``serve``; after ``passes`` idle loop passes, its RSS."""
    command = [sys.executable, "-m", "analyzer"]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as work:
        env = {**os.environ, **ENV, "CANARY_SERVICE__REPORTS_DIR": f"{work}/reports"}
        sim = subprocess.Popen(
            [*command, "sim", "--scenario", scenario, "--kubeconfig-out", f"{work}/kubeconfig"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=work,
        )  # fmt: skip
        serve = None
        try:
            ready = _first_line(sim, "sim", "ready ")
            fields = dict(part.split("=", 1) for part in ready.split()[1:])
            metrics = fields["metrics"].removesuffix("/metrics")
            serve = subprocess.Popen(
                [*command, "serve", "--listen", "127.0.0.1:0", "--kubeconfig",
                 fields["kubeconfig"], "--prometheus-url", metrics],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=work,
            )  # fmt: skip
            url = _first_line(serve, "serve", "serving ").removeprefix("serving ")
            seen: list[float] = []
            deadline = time.monotonic() + timeout
            while len(seen) < passes + 1:
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise MemoryBenchError(f"serve made {len(seen)} passes in {timeout:g}s")
                beat = _heartbeat(url)
                if beat is not None and (not seen or beat != seen[-1]):
                    seen.append(beat)
                time.sleep(0.1)  # polling the heartbeat, bounded by the deadline
            return IdleSample(rss_mb=rss_mb(serve.pid), passes=len(seen) - 1)
        finally:
            if serve is not None:
                _stop(serve)
            _stop(sim)


def interval95(values: list[float]) -> tuple[float, float]:
    """Student-t 95% interval of the mean (a point for a single run)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean - float(half), mean + float(half)


def run(runs: int, scenario: str = "healthy", passes: int = 6) -> dict[str, object]:
    """``runs`` fresh mesh + serve pairs; the idle RSS of each, its mean and 95% interval."""
    samples = [idle_serve(scenario, passes) for _ in range(runs)]
    values = [sample.rss_mb for sample in samples]
    low, high = interval95(values)
    return {
        "scenario": scenario,
        "runs": runs,
        "idle_passes": passes,
        "rss_mb": [round(value, 1) for value in values],
        "mean_mb": round(statistics.fmean(values), 1),
        "interval95_mb": [round(low, 1), round(high, 1)],
    }
