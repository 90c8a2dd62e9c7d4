"""A throwaway local Prometheus for benchmarks: backfilled history, 127.0.0.1, a free port.

The scale benchmark must measure the real query path (HTTP, PromQL evaluation, JSON
decoding), so it runs the Debian ``prometheus`` binary on data written with
``promtool tsdb create-blocks-from openmetrics`` into a temporary directory, and stops it
afterwards. Missing binaries raise ``PrometheusMissingError`` (the command exits 2).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests


class PrometheusMissingError(RuntimeError):
    """The ``prometheus`` or ``promtool`` binary is not installed."""


class PrometheusStartError(RuntimeError):
    """Prometheus did not come up, or promtool could not write the history."""


def binaries() -> tuple[str, str]:
    """Paths of ``prometheus`` and ``promtool``; ``PrometheusMissingError`` when absent."""
    prometheus = shutil.which("prometheus") or "/usr/bin/prometheus"
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    missing = [
        name
        for name, path in (("prometheus", prometheus), ("promtool", promtool))
        if not Path(path).exists()
    ]
    if missing:
        raise PrometheusMissingError(
            f"{' and '.join(missing)} not installed: install the Debian package 'prometheus' "
            "(apt-get install -y --no-install-recommends prometheus, or make debs)"
        )
    return prometheus, promtool


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalPrometheus:
    """A running Prometheus process on backfilled data."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> LocalPrometheus:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def backfill(openmetrics_text: str, work_dir: Path) -> Path:
    """Write OpenMetrics history into TSDB blocks under ``work_dir/data``."""
    _, promtool = binaries()
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    source = work_dir / "history.om"
    text = (
        openmetrics_text if openmetrics_text.endswith("# EOF\n") else openmetrics_text + "# EOF\n"
    )
    source.write_text(text)
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise PrometheusStartError(f"promtool backfill failed: {result.stderr[-2000:]}")
    return data_dir


def start(work_dir: Path, timeout: float = 60.0, attempts: int = 3) -> LocalPrometheus:
    """Start Prometheus on ``work_dir/data`` and wait (with a deadline) for ``/-/ready``."""
    prometheus, _ = binaries()
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n")
    last_log = ""
    for attempt in range(attempts):
        port = _free_port()
        log_path = work_dir / f"prometheus-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data_dir}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=100y",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = LocalPrometheus(f"http://127.0.0.1:{port}", process, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                    return server
            except requests.RequestException:
                pass
            time.sleep(0.1)  # poll interval inside a deadline loop
        server.stop()
        last_log = log_path.read_text(errors="replace")[-2000:]
        if "address already in use" not in last_log:
            break
    raise PrometheusStartError(f"Prometheus did not start:\n{last_log}")
