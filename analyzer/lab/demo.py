"""``make demo``: the whole product on a simulated mesh, live, in a few minutes.

Starts the simulated mesh (fake Kubernetes + Istio + traffic), a real Prometheus scraping
it, a real Alertmanager routing to a small on-call receiver, and the real ``serve`` process
with a compressed maintenance window and compressed judging windows. It then asks the
service for an upgrade through the API, as an operator would, and shows what happens:
tag move, restarts, verdicts with numbers, the rollback when a later wave regresses, and
the alerts on-call receives. It ends with a summary and where the report and logs are.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import requests
from fastapi import FastAPI, Request
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from analyzer.lab.local_servers import (
    LocalServerMissingError,
    binary,
    free_port,
    start_alertmanager,
    start_prometheus,
)
from analyzer.sim.mesh import SimulatedMesh
from analyzer.sim.scenario import load_scenario
from analyzer.views.http_api import HttpServer

#: Judging windows for the demo (real seconds; the mesh's own clock runs faster).
DEMO_WINDOWS = {"before": "30s", "settle": "5s", "after": "30s", "step": "5s"}
DEMO_ENV = {
    "CANARY_UPGRADE__WAVES": "[1, 2]",
    # the operator pins the canary (the scenarios' story starts in accounts); the other
    # namespaces follow busiest first, as the plan orders them by evidence
    "CANARY_UPGRADE__CANARY": "accounts",
    "CANARY_UPGRADE__EVALUATION_DELAY": "5s",
    "CANARY_UPGRADE__POLL_INTERVAL": "1s",
    "CANARY_UPGRADE__ROLLOUT_TIMEOUT": "90s",
    "CANARY_UPGRADE__ROLLOUT_ESTIMATE": "20s",
    "CANARY_SERVICE__TICK_INTERVAL": "1s",
    "CANARY_SERVICE__HEARTBEAT_INTERVAL": "30s",
    "CANARY_SERVICE__LEASE_DURATION": "10s",
    # as an unattended night should run: one 1 % chance of any false rollback for the
    # whole upgrade, so a healthy canary is not rolled back on noise (the bad wave's
    # regression is far beyond the per-test alpha this leaves)
    "CANARY_RULES__NIGHT_BUDGET": "0.01",
}


class DemoError(RuntimeError):
    """The demo could not run (a missing binary, a part that did not start)."""


@dataclass
class AlertInbox:
    """The on-call side: receives Alertmanager's webhook notifications."""

    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI(docs_url=None, redoc_url=None)

        @app.post("/alerts")
        async def alerts(request: Request) -> dict[str, str]:
            payload = await request.json()
            with self.lock:
                for alert in payload.get("alerts", []):
                    self.received.append(
                        {**alert, "status": alert.get("status", payload.get("status"))}
                    )
            return {"status": "ok"}

        return app

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)


class Demo:
    """Runs the demo; every part it starts, it stops."""

    def __init__(self, scenario: str, work_dir: Path, console: Console, timeout: float):
        self.scenario = scenario
        self.work = work_dir
        self.console = console
        self.timeout = timeout
        self.stack: list[Any] = []
        self.inbox = AlertInbox()

    def run(self) -> int:
        try:
            return self._run()
        finally:
            for stop in reversed(self.stack):
                try:
                    stop()
                except Exception as error:  # keep stopping the rest
                    self.console.print(f"[yellow]while stopping: {error}[/]")

    def _step(self, text: str) -> None:
        self.console.print(f"[bold cyan]▶[/] {text}")

    def _run(self) -> int:
        for name in ("prometheus", "promtool", "prometheus-alertmanager"):
            try:
                binary(name)
            except LocalServerMissingError as error:
                raise DemoError(str(error)) from None
        self.work.mkdir(parents=True, exist_ok=True)
        self._step(
            f"simulated mesh: scenario [bold]{self.scenario}[/] (fake Kubernetes API + Istio + traffic)"
        )
        scenario = load_scenario(self.scenario)
        mesh = SimulatedMesh(scenario, kubeconfig_path=self.work / "kubeconfig")
        mesh.start()
        self.stack.append(mesh.stop)
        self.console.print(
            f"  {len(scenario.namespaces)} namespaces on tag default → 1-14-6; istiod 1-14-6 and 1-15-4 ready; "
            f"regression planted: {', '.join(f'{r.namespace} on {r.revision}' for r in scenario.regressions) or 'none'}"
        )
        inbox_server = HttpServer(self.inbox.app(), "127.0.0.1", 0)
        inbox_server.start()
        self.stack.append(inbox_server.stop)
        inbox_url = f"http://127.0.0.1:{inbox_server.bound_port}/alerts"
        self._step("real Alertmanager on loopback, routing to the on-call inbox")
        alertmanager = start_alertmanager(self.work / "alertmanager", inbox_url)
        self.stack.append(alertmanager.stop)
        self._step("real Prometheus scraping the mesh every second")
        metrics_target = mesh.metrics_url.removeprefix("http://").removesuffix("/metrics")
        prometheus = start_prometheus(self.work / "prometheus", [metrics_target], "1s")
        self.stack.append(prometheus.stop)
        self._wait_for_baseline(prometheus)
        listen_port = free_port()
        url = f"http://127.0.0.1:{listen_port}"
        token_file = self.work / "token"
        token_file.write_text(os.urandom(16).hex())
        token_file.chmod(0o600)
        now = datetime.now(UTC)
        cron = f"{now.minute} {now.hour} * * *"  # tonight's window opened this minute
        self._step(
            f"canary-analyzer serve: maintenance window [bold]{cron}[/] (UTC) for 15m, "
            f"windows before {DEMO_WINDOWS['before']} / settle {DEMO_WINDOWS['settle']} / after "
            f"{DEMO_WINDOWS['after']}, night budget "
            f"{float(DEMO_ENV['CANARY_RULES__NIGHT_BUDGET']):.0%} for any false rollback"
        )
        serve_log = self.work / "serve.log"
        command = [
            sys.executable, "-m", "analyzer", "serve",
            "--listen", f"127.0.0.1:{listen_port}",
            "--token-file", str(token_file),
            "--window-cron", cron, "--window-duration", "15m", "--timezone", "UTC",
            "--kubeconfig", str(mesh.kubeconfig_path),
            "--prometheus-url", prometheus.url,
            "--alertmanager-url", alertmanager.url,
            *(f"--{k}={v}" for k, v in DEMO_WINDOWS.items()),
        ]  # fmt: skip
        env = {
            **os.environ,
            **DEMO_ENV,
            "CANARY_SERVICE__REPORTS_DIR": str(self.work / "reports"),
            "CANARY_SERVICE__PUBLIC_URL": url,
            "CANARY_UPGRADE__STATE_NAMESPACE": "istio-system",
        }
        with serve_log.open("wb") as log:
            serve = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=env)
        self.stack.append(lambda: self._stop_process(serve))
        first_line = serve.stdout.readline().decode().strip() if serve.stdout else ""
        if not first_line.startswith("serving"):
            raise DemoError(f"serve did not start (see {serve_log}): {first_line}")
        self.console.print(f"  {first_line} — status page {url}/")
        token = token_file.read_text()
        self._step('operator: POST /api/upgrade {"to_revision": "1-15-4"}')
        answer = httpx.post(
            f"{url}/api/upgrade", json={"to_revision": "1-15-4"},
            headers={"Authorization": f"Bearer {token}"}, timeout=10,
        )  # fmt: skip
        answer.raise_for_status()
        self.console.print(f"  {answer.json()['message']}")
        status = self._follow(url)
        return self._summary(status, url)

    def _wait_for_baseline(self, prometheus) -> None:
        seconds = int(DEMO_WINDOWS["before"].removesuffix("s"))
        self._step(f"collecting {seconds}s of baseline traffic before anything moves")
        deadline = time.monotonic() + seconds + 60
        first = None
        with self.console.status("waiting for the first samples…"):
            while time.monotonic() < deadline:
                try:
                    found = prometheus.query("count(istio_requests_total)")
                except requests.RequestException:
                    found = []
                if found and first is None:
                    first = time.monotonic()
                if first is not None and time.monotonic() - first >= seconds:
                    return
                time.sleep(0.5)  # polling Prometheus within a deadline
        raise DemoError("Prometheus collected no mesh metrics")

    def _follow(self, url: str) -> dict[str, Any]:
        """Print the timeline, verdicts and alerts as they happen, until the upgrade ends."""
        shown_timeline = 0
        shown_alerts = 0
        shown_verdicts: set[tuple[str, str]] = set()
        deadline = time.monotonic() + self.timeout
        status: dict[str, Any] = {}
        with self.console.status("waiting…") as spinner:
            while time.monotonic() < deadline:
                try:
                    status = httpx.get(f"{url}/api/status", timeout=5).json()
                except httpx.HTTPError:
                    time.sleep(0.5)  # the service may be busy; poll again within the deadline
                    continue
                for item in status.get("timeline", [])[shown_timeline:]:
                    style = "yellow" if item.get("warning") else "green"
                    where = f"[bold]{item['namespace']}[/]: " if item.get("namespace") else ""
                    self.console.print(f"  [{style}]•[/] {where}{item['message']}")
                    shown_timeline += 1
                for verdict in reversed(status.get("last_verdicts", [])):
                    key = (verdict["namespace"], verdict["at"])
                    if key in shown_verdicts:
                        continue
                    shown_verdicts.add(key)
                    for rule in verdict.get("rules", []):
                        colour = {"pass": "green", "fail": "red"}.get(rule["verdict"], "yellow")
                        self.console.print(
                            f"      [{colour}]{rule['verdict'].upper():<12}[/] {verdict['namespace']} "
                            f"{rule['rule']}: {rule['reason']}"
                        )
                alerts = self.inbox.snapshot()
                for alert in alerts[shown_alerts:]:
                    labels = alert.get("labels", {})
                    colour = "red" if labels.get("severity") == "critical" else "magenta"
                    self.console.print(
                        f"  [{colour}]✉ on-call received[/] {escape('[' + str(alert.get('status')) + ']')} "
                        f"{labels.get('alertname')} ({labels.get('severity')}): "
                        f"{alert.get('annotations', {}).get('summary', '')}"
                    )
                shown_alerts = len(alerts)
                upgrade = status.get("upgrade") or {}
                spinner.update(
                    f"{status.get('phase')}: {upgrade.get('stage', '')} wave {upgrade.get('wave', '')} "
                    f"— {status.get('message', '')[:90]}"
                )
                finished = upgrade.get("outcome") and status.get("phase") in (
                    "done",
                    "failed",
                    "held",
                )
                paged = any(
                    a.get("labels", {}).get("alertname")
                    in (
                        "CanaryAnalyzerRollbackFinished",
                        "CanaryAnalyzerUpgradeDone",
                        "CanaryAnalyzerUpgradeHeld",
                    )
                    for a in alerts
                )
                reported = any(
                    r.get("name") == upgrade.get("report") for r in status.get("reports", [])
                )
                if finished and paged and reported:
                    return status
                time.sleep(0.5)  # polling the service within the deadline
        said = f"{status.get('phase')}: {status.get('message')}" if status else "nothing"
        raise DemoError(
            f"the upgrade did not finish within {self.timeout:.0f}s; the service last said "
            f"{said!r} (see {self.work / 'serve.log'})"
        )

    def _summary(self, status: dict[str, Any], url: str) -> int:
        upgrade = status.get("upgrade") or {}
        table = Table(title=f"upgrade {upgrade.get('upgrade_id')}: {upgrade.get('outcome')}")
        for column in ("namespace", "state", "verdict", "why"):
            table.add_column(column)
        for record in upgrade.get("namespaces", []):
            table.add_row(
                record["name"],
                record["state"],
                record.get("verdict") or "",
                (record.get("reason") or "")[:100],
            )
        self.console.print(table)
        if upgrade.get("reason"):
            self.console.print(f"reason: {upgrade['reason']}")
        reports = sorted((self.work / "reports").glob("*.html"))
        alerts = self.inbox.snapshot()
        self.console.print(f"alerts on-call received: {len(alerts)} "
                           f"({', '.join(sorted({a['labels'].get('alertname', '?') for a in alerts}))})")  # fmt: skip
        self.console.print(f"report: {reports[-1] if reports else 'none'}")
        self.console.print(f"service log (JSON lines): {self.work / 'serve.log'}")
        self.console.print(f"everything else: {self.work}")
        return 0 if upgrade.get("outcome") in ("rolled_back", "promoted") else 1

    @staticmethod
    def _stop_process(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def run_demo(scenario: str, work_dir: Path | None, timeout: float = 240.0) -> int:
    """Entry of ``canary-analyzer demo``."""
    console = Console(highlight=False)
    work = work_dir or Path(tempfile.mkdtemp(prefix="canary-analyzer-demo-"))
    started = time.monotonic()
    console.print(f"[bold]canary-analyzer demo[/] — working in {work}")
    code = Demo(scenario, work, console, timeout).run()
    console.print(f"demo finished in {timedelta(seconds=round(time.monotonic() - started))}")
    console.print("(the report is one self-contained HTML file: any browser, no network)")
    return code
