"""Real Prometheus and Alertmanager processes on loopback, for the demo, benchmarks and tests.

Each server runs the Debian-packaged binary on 127.0.0.1 on a free port with its data in a
directory the caller owns, waits for ``/-/ready`` with a deadline, retries on a port clash,
and is stopped by whoever started it. Prometheus either scrapes live targets (the simulated
mesh) or serves deterministic history written with ``promtool tsdb create-blocks-from
openmetrics``. Alertmanager routes every alert to one webhook receiver, fast (``group_wait:
0s``), with clustering off (else it binds 0.0.0.0:9094).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests


class LocalServerMissingError(RuntimeError):
    """A needed binary is not installed (the Debian packages ``prometheus``,
    ``prometheus-alertmanager``; ``make debs`` installs them)."""


class LocalServerStartError(RuntimeError):
    """A server did not come up (port taken, bad config), or promtool failed."""


def binary(name: str) -> str:
    """Path of a packaged binary; ``LocalServerMissingError`` naming the package when absent."""
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not Path(path).exists():
        package = "prometheus-alertmanager" if "alertmanager" in name else "prometheus"
        raise LocalServerMissingError(
            f"{name} is not installed: install the Debian package '{package}' "
            f"(apt-get install -y --no-install-recommends {package}, or `make debs`)"
        )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (starters retry on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true or the deadline passes (``LocalServerStartError``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)  # poll interval inside a deadline loop
    raise LocalServerStartError(f"timed out after {timeout:g}s waiting for {what}")


@dataclass
class LocalServer:
    """A running server process and where its log goes."""

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

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class LocalPrometheus(LocalServer):
    """A local Prometheus."""

    def query(self, promql: str) -> list:
        """An instant query (for readiness conditions)."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        answer.raise_for_status()
        return answer.json()["data"]["result"]


class LocalAlertmanager(LocalServer):
    """A local Alertmanager."""

    def alerts(self, **label_filters: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` filtered by exact label values."""
        params = [("filter", f'{key}="{value}"') for key, value in label_filters.items()]
        answer = requests.get(f"{self.url}/api/v2/alerts", params=params, timeout=5)
        answer.raise_for_status()
        return answer.json()


def _start(
    kind: type[LocalServer],
    command: Callable[[int, int], list[str]],
    work_dir: Path,
    name: str,
    timeout: float,
    attempts: int,
) -> LocalServer:
    last_log = ""
    for attempt in range(attempts):
        port = free_port()
        log_path = work_dir / f"{name}-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(command(port, attempt), stdout=log, stderr=subprocess.STDOUT)
        server = kind(f"http://127.0.0.1:{port}", process, log_path)

        def ready(server: LocalServer = server) -> bool:
            if server.process.poll() is not None:
                raise LocalServerStartError(f"{name} exited")
            return requests.get(f"{server.url}/-/ready", timeout=2).status_code == 200

        try:
            wait_for(ready, timeout, f"{name} /-/ready")
            return server
        except LocalServerStartError:
            server.stop()
            last_log = log_path.read_text(errors="replace")[-2000:]
            if "address already in use" not in last_log:
                break
    raise LocalServerStartError(f"{name} did not start:\n{last_log}")


def start_prometheus(
    work_dir: Path,
    scrape_targets: Sequence[str] = (),
    scrape_interval: str = "1s",
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
    attempts: int = 3,
) -> LocalPrometheus:
    """Prometheus with its TSDB in ``work_dir/data`` (backfilled or empty), scraping
    ``scrape_targets`` (``host:port``) every ``scrape_interval``."""
    prometheus = binary("prometheus")
    work_dir.mkdir(parents=True, exist_ok=True)
    data_dir = work_dir / "data"
    data_dir.mkdir(exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval}
    }
    if scrape_targets:
        config["scrape_configs"] = [
            {
                "job_name": "mesh",
                "scrape_interval": scrape_interval,
                "static_configs": [{"targets": list(scrape_targets)}],
            }
        ]
    config_path = work_dir / "prometheus.yml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML

    def command(port: int, _attempt: int) -> list[str]:
        return [
            prometheus,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=100y",
            "--log.level=warn",
            *extra_args,
        ]

    server = _start(LocalPrometheus, command, work_dir, "prometheus", timeout, attempts)
    assert isinstance(server, LocalPrometheus)
    return server


def backfill(openmetrics_text: str, work_dir: Path, timeout: float = 900.0) -> Path:
    """Write OpenMetrics history into TSDB blocks under ``work_dir/data``."""
    promtool = binary("promtool")
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    source = work_dir / "history.om"
    text = openmetrics_text.rstrip("\n")
    if not text.endswith("# EOF"):
        text += "\n# EOF"
    source.write_text(text + "\n")
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise LocalServerStartError(f"promtool backfill failed: {result.stderr[-2000:]}")
    return data_dir


def start_alertmanager(
    work_dir: Path,
    receiver_url: str,
    *,
    repeat_interval: str = "1h",
    resolve_timeout: str = "5m",
    timeout: float = 30.0,
    attempts: int = 3,
) -> LocalAlertmanager:
    """Alertmanager routing every alert (each its own group) to ``receiver_url``."""
    alertmanager = binary("prometheus-alertmanager")
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "alertmanager.yml"
    config_path.write_text(
        json.dumps(
            {
                "global": {"resolve_timeout": resolve_timeout},
                "route": {
                    "receiver": "on-call",
                    "group_by": ["..."],
                    "group_wait": "0s",
                    "group_interval": "1s",
                    "repeat_interval": repeat_interval,
                },
                "receivers": [
                    {
                        "name": "on-call",
                        "webhook_configs": [{"url": receiver_url, "send_resolved": True}],
                    }
                ],
            },
            indent=2,
        )
    )

    def command(port: int, attempt: int) -> list[str]:
        data_dir = work_dir / f"data-{attempt}"
        data_dir.mkdir(exist_ok=True)
        return [
            alertmanager,
            f"--config.file={config_path}",
            f"--storage.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    server = _start(LocalAlertmanager, command, work_dir, "alertmanager", timeout, attempts)
    assert isinstance(server, LocalAlertmanager)
    return server
