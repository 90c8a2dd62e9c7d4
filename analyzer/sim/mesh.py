"""The simulated mesh as one object: fake API server, controllers, traffic generator.

``SimulatedMesh(scenario).running()`` seeds the cluster the scenario describes (istiods,
webhooks, tags, gateway, namespaces and workloads, all ready), serves the fake Kubernetes
API and ``/metrics`` on 127.0.0.1 from a background thread, and writes a kubeconfig. Tests
read what clients did through this Python object (write log, restart counts) — never
through extra HTTP endpoints the product could be tempted to use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from ruamel.yaml import YAML
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from analyzer.sim import istio_objects, seed
from analyzer.sim.api import ApiContext, WriteRecord, build_api
from analyzer.sim.clock import SimClock
from analyzer.sim.controller import Controller
from analyzer.sim.faults import FaultState
from analyzer.sim.injection import ProxySettings, SidecarInjector, proxy_revision
from analyzer.sim.resources import (
    CRONJOBS,
    DEPLOYMENTS,
    JOBS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    SERVICES,
    WORKLOAD_TYPES,
    ResourceType,
    resource_for_kind,
)
from analyzer.sim.scenario import (
    ApiErrorFault,
    DriftSpec,
    NamespaceSpec,
    NeverReadyFault,
    RegressionSpec,
    Scenario,
    SlowResponseFault,
    WorkloadSpec,
)
from analyzer.sim.store import Change, ObjectStore
from analyzer.sim.traffic import TrafficGenerator

log = logging.getLogger("canary_analyzer.sim")

CONTROLLER_TICK_SECONDS = 0.05
_START_TIMEOUT_SECONDS = 15.0


def _group_kind(obj: dict[str, Any]) -> tuple[str, str]:
    """(API group, kind) of a rendered object, for ``resource_for_kind``."""
    group = obj["apiVersion"].rpartition("/")[0]
    return group, obj["kind"]


class SimStartError(RuntimeError):
    """The simulated mesh could not start (port taken, seed cluster never settled)."""


@dataclass(frozen=True)
class TemplateChange:
    """A client changed a workload's pod template: a rollout (restart) began."""

    kind: str
    namespace: str
    name: str
    annotations: dict[str, str]
    time: float  # simulated seconds since start


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as error:
        sock.close()
        raise SimStartError(f"cannot listen on 127.0.0.1:{port}: {error}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class SimulatedMesh:
    """A fake Kubernetes-with-Istio cluster plus a traffic generator, for one scenario."""

    def __init__(self, scenario: Scenario, *, api_port: int = 0, metrics_port: int = 0,
                 kubeconfig_path: str | Path | None = None,
                 write_log_path: str | Path | None = None) -> None:
        self.scenario = scenario
        self.clock = SimClock(scenario.time_scale)
        self.store = ObjectStore(self.clock)
        self.faults = FaultState(scenario.faults)
        versions = {revision.name: revision.proxy_version for revision in scenario.revisions}
        self.injector = SidecarInjector(self.store, ProxySettings(
            hub=scenario.hub, native_sidecars=scenario.native_sidecars,
            version_of=lambda revision: versions.get(revision, revision.replace("-", "."))))
        self.controller = Controller(
            self.store, self.clock, self.injector, self.faults,
            ready_delay=scenario.pod_ready_delay.total_seconds(),
            termination_delay=scenario.pod_termination_delay.total_seconds(),
            seed=scenario.seed)
        self.traffic = TrafficGenerator(scenario, self.store, self.clock)
        self._api_port = api_port
        self._metrics_port = metrics_port
        self._kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else None
        self._write_log_path = Path(write_log_path) if write_log_path else None
        self._writes: list[WriteRecord] = []
        self._template_changes: list[TemplateChange] = []
        self._records_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[uvicorn.Server] = []
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._closing: asyncio.Event | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self.api_url = ""
        self.metrics_url = ""
        self.store.add_listener(self._on_change)

    # -- lifecycle --------------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self) -> Iterator[SimulatedMesh]:
        """Start, yield the running mesh, stop on exit."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def start(self) -> None:
        """Seed the cluster, bring it up, serve the API and metrics; returns when ready."""
        self._seed()
        api_socket = _bind(self._api_port)
        try:
            metrics_socket = _bind(self._metrics_port)
        except SimStartError:
            api_socket.close()
            raise
        self.api_url = f"http://127.0.0.1:{api_socket.getsockname()[1]}"
        self.metrics_url = f"http://127.0.0.1:{metrics_socket.getsockname()[1]}/metrics"
        self._thread = threading.Thread(target=self._run_loop, name="simulated-mesh",
                                        args=(api_socket, metrics_socket), daemon=True)
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT_SECONDS) or self._start_error:
            self.stop()
            raise SimStartError(f"the simulated mesh did not start: {self._start_error}")
        self._write_kubeconfig()

    def stop(self) -> None:
        """Stop serving and join the background thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            def request_exit() -> None:
                if self._closing is not None:
                    self._closing.set()
                for server in self._servers:
                    server.should_exit = True
            loop.call_soon_threadsafe(request_exit)
            thread.join(timeout=10)
        self._thread = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    @property
    def kubeconfig_path(self) -> Path:
        assert self._kubeconfig_path is not None, "start the mesh first"
        return self._kubeconfig_path

    # -- the Python API for tests and the demo ---------------------------------------------

    def writes(self) -> list[WriteRecord]:
        """Every write request (POST/PUT/PATCH/DELETE) clients sent, in order."""
        with self._records_lock:
            return list(self._writes)

    def template_changes(self) -> list[TemplateChange]:
        """Every pod-template change of a Deployment/StatefulSet/DaemonSet by a client."""
        with self._records_lock:
            return list(self._template_changes)

    def restart_counts(self) -> Counter[tuple[str, str, str]]:
        """(kind, namespace, name) → how many times its pod template changed (restarts)."""
        return Counter((c.kind, c.namespace, c.name) for c in self.template_changes())

    def set_fault(self, fault: NeverReadyFault | ApiErrorFault | SlowResponseFault) -> None:
        """Add a fault at run time (counting for API faults starts now)."""
        self.faults.add(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_regressions(self, regressions: list[RegressionSpec]) -> None:
        """Replace the scenario's regressions at run time."""
        self.traffic.set_regressions(regressions)

    def set_drift(self, drift: DriftSpec | None) -> None:
        self.traffic.set_drift(drift)

    def proxy_revisions(self, namespace: str) -> Counter[str | None]:
        """Non-terminating pods of a namespace per injected proxy revision (None: no proxy)."""
        pods, _ = self.store.list(PODS, namespace,
                                  lambda pod: "deletionTimestamp" not in pod["metadata"])
        return Counter(proxy_revision(pod) for pod in pods)

    def simulated_seconds(self) -> float:
        return self.clock.elapsed()

    # -- internals --------------------------------------------------------------------------

    def _on_change(self, rtype: ResourceType, change: Change) -> None:
        if rtype not in WORKLOAD_TYPES or change.type != "MODIFIED" or change.previous is None:
            return
        before = (change.previous.get("spec") or {}).get("template")
        after = (change.obj.get("spec") or {}).get("template")
        if before == after:
            return
        metadata = change.obj["metadata"]
        annotations = dict(((after or {}).get("metadata") or {}).get("annotations") or {})
        with self._records_lock:
            self._template_changes.append(TemplateChange(
                rtype.kind, metadata["namespace"], metadata["name"], annotations,
                self.clock.elapsed()))

    def _on_write(self, record: WriteRecord) -> None:
        with self._records_lock:
            self._writes.append(record)
        if self._write_log_path is not None:
            with self._write_log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record.__dict__, default=str) + "\n")

    def _create(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        self.store.create(rtype, obj["metadata"].get("namespace"), obj)

    def _seed(self) -> None:
        scenario = self.scenario
        for index in range(scenario.nodes):
            self._create(NODES, seed.node_object(f"sim-node-{index + 1}"))
        for name in ("default", "kube-system", seed.ISTIO_SYSTEM):
            self._create(NAMESPACES, seed.namespace_object(name, {}))
        for revision in scenario.revisions:
            objects = [
                {"apiVersion": "apps/v1", "kind": "Deployment", **istio_objects.istiod_deployment(
                    revision.name, revision.proxy_version, scenario.hub,
                    revision.istiod_replicas)},
                *({"apiVersion": "v1", "kind": "ConfigMap", **config_map}
                  for config_map in istio_objects.istio_configmaps(revision.name)),
                *istio_objects.revision_objects(scenario.istio_layout, revision.name)]
            if revision.installed_by is not None:
                objects += istio_objects.control_plane_objects(scenario.istio_layout,
                                                               revision.name)
                objects = [istio_objects.mark_installed(obj, revision.installed_by,
                                                        revision.name, revision.proxy_version)
                           for obj in objects]
            for obj in objects:
                self._create(resource_for_kind(*_group_kind(obj)), obj)
            if not revision.istiod_ready:
                self.faults.add(NeverReadyFault(namespace=seed.ISTIO_SYSTEM,
                                                workload=f"istiod-{revision.name}"))
        for tag in scenario.tags:
            for obj in istio_objects.tag_objects(scenario.istio_layout, tag.name, tag.revision):
                self._create(resource_for_kind(*_group_kind(obj)), obj)
        self._settle()  # istiods up before any pod needs injection
        if scenario.gateway is not None:
            self._create(NAMESPACES, seed.namespace_object(
                scenario.gateway.namespace, seed.gateway_namespace_labels(scenario)))
            self._create(DEPLOYMENTS, seed.gateway_deployment(scenario))
            self._create(SERVICES, seed.gateway_service(scenario))
        for namespace in scenario.namespaces:
            self._create(NAMESPACES, seed.namespace_object(
                namespace.name, scenario.namespace_labels(namespace)))
            for workload in namespace.workloads:
                self._create(resource_for_kind("apps", workload.kind),
                             seed.application_workload(namespace.name, workload))
                self._create(SERVICES, seed.application_service(namespace.name, workload))
            self._seed_unmanaged(namespace)
        self._settle()

    def _seed_unmanaged(self, namespace: NamespaceSpec) -> None:
        """What no upgrade restarts: Jobs (some from CronJobs), bare and operator-owned pods."""
        cron_uids: dict[str, str] = {}
        for job in namespace.jobs:
            cron_uid = None
            if job.cron_job is not None:
                if job.cron_job not in cron_uids:
                    cron_uids[job.cron_job] = self.store.create(
                        CRONJOBS, namespace.name, seed.cron_job_object(namespace.name, job)
                    )["metadata"]["uid"]
                cron_uid = cron_uids[job.cron_job]
            self._create(JOBS, seed.job_object(namespace.name, job, cron_uid))
        for pod in namespace.bare_pods:
            self.controller.create_standalone_pod(namespace.name,
                                                  seed.bare_pod(namespace.name, pod),
                                                  ready_now=True)
        for rollout in namespace.rollouts:
            owner_uid = seed.foreign_uid("Rollout", namespace.name, rollout.name)
            self._create(REPLICASETS,
                         seed.rollout_replica_set(namespace.name, rollout, owner_uid))
            self._create(SERVICES, seed.application_service(
                namespace.name, WorkloadSpec(name=rollout.name)))

    def _settle(self) -> None:
        """Run the controllers with instant readiness until every workload is up."""
        for _ in range(200):
            self.controller.reconcile(instant_ready=True)
            if self._seed_complete():
                return
        raise SimStartError("the scenario's cluster did not come up (check revisions, tags "
                            "and namespace labels)")

    def _seed_complete(self) -> bool:
        for job in self.store.list(JOBS)[0]:
            status = job.get("status") or {}
            if not (status.get("active") or status.get("succeeded")):
                return False
        for replica_set in self.store.list(REPLICASETS)[0]:
            if (replica_set.get("status") or {}).get("readyReplicas", 0) < \
                    replica_set["spec"].get("replicas", 0) and not any(
                        ref.get("kind") == "Deployment"
                        for ref in replica_set["metadata"].get("ownerReferences") or []):
                return False  # an operator's ReplicaSet: no Deployment status to wait on
        for rtype in WORKLOAD_TYPES:
            for workload in self.store.list(rtype)[0]:
                status = workload.get("status") or {}
                metadata = workload["metadata"]
                if status.get("observedGeneration") != metadata.get("generation"):
                    return False
                if self.faults.could_hold(metadata["namespace"], metadata["name"]):
                    continue
                if rtype is DEPLOYMENTS:
                    if status.get("availableReplicas", 0) < workload["spec"].get("replicas", 1):
                        return False
                elif rtype.kind == "StatefulSet":
                    if status.get("readyReplicas", 0) < workload["spec"].get("replicas", 1):
                        return False
                elif status.get("numberAvailable", 0) < status.get("desiredNumberScheduled", 1):
                    return False
        return True

    def _write_kubeconfig(self) -> None:
        if self._kubeconfig_path is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="canary-sim-")
            self._kubeconfig_path = Path(self._tempdir.name) / "kubeconfig"
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "simulated-mesh", "cluster": {"server": self.api_url}}],
            "users": [{"name": "simulated-admin", "user": {}}],
            "contexts": [{"name": "simulated-mesh", "context": {
                "cluster": "simulated-mesh", "user": "simulated-admin",
                "namespace": "default"}}],
            "current-context": "simulated-mesh",
        }
        self._kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        with self._kubeconfig_path.open("w", encoding="utf-8") as handle:
            YAML(typ="safe", pure=True).dump(config, handle)

    def _run_loop(self, api_socket: socket.socket, metrics_socket: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(api_socket, metrics_socket))
        except BaseException as error:  # reported to start() or logged
            self._start_error = error
            self._started.set()
            log.exception("the simulated mesh stopped with an error")
        finally:
            api_socket.close()
            metrics_socket.close()
            loop.close()

    async def _serve(self, api_socket: socket.socket, metrics_socket: socket.socket) -> None:
        self._closing = asyncio.Event()
        context = ApiContext(store=self.store, controller=self.controller, faults=self.faults,
                             clock=self.clock,
                             kubernetes_version=self.scenario.kubernetes_version,
                             on_write=self._on_write, closing=self._closing)
        registry = self.traffic.registry

        async def metrics(_request: Request) -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

        metrics_app = Starlette(routes=[Route("/metrics", metrics)])
        for app, _sock in ((build_api(context), api_socket), (metrics_app, metrics_socket)):
            server = uvicorn.Server(uvicorn.Config(
                app, log_level="warning", access_log=False, lifespan="off",
                timeout_graceful_shutdown=1))
            self._servers.append(server)
        tasks = [asyncio.create_task(server.serve(sockets=[sock]))
                 for server, sock in zip(self._servers, (api_socket, metrics_socket),
                                         strict=True)]
        ticker = asyncio.create_task(self._tick())
        while not all(server.started for server in self._servers):
            if any(task.done() for task in tasks):
                break
            await asyncio.sleep(0.01)
        self._started.set()
        await asyncio.gather(*tasks)
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker

    async def _tick(self) -> None:
        tick = self.scenario.traffic_tick_seconds
        last_traffic = time.monotonic()
        while True:
            started = time.monotonic()
            try:
                self.controller.reconcile()
                now = time.monotonic()
                if now - last_traffic >= tick:
                    self.traffic.tick(now - last_traffic)
                    last_traffic = now
            except Exception:  # a bug must not freeze the cluster silently
                log.exception("simulated controller tick failed")
            # a large cluster must not starve the API: rest at least as long as we worked
            await asyncio.sleep(max(CONTROLLER_TICK_SECONDS, time.monotonic() - started))
