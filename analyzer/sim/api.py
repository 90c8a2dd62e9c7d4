"""The fake Kubernetes API server: the real wire format over HTTP, served by Starlette.

Clients (the official ``kubernetes`` client, kubectl) find what they expect: discovery
documents, typed lists with a list resourceVersion, ``Status`` bodies for errors, the
three PATCH content types, ``?dryRun=All``, chunked lists (``limit``/``continue``), watches
streaming newline-delimited JSON events from a resourceVersion until ``timeoutSeconds``,
and server-side ``Table`` printing for ``kubectl get``. Every write is recorded for tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from analyzer.sim.clock import SimClock, rfc3339, rfc3339_micro
from analyzer.sim.controller import Controller
from analyzer.sim.deletion import delete_options
from analyzer.sim.events import invalid_message, validate_event_create
from analyzer.sim.faults import FaultState
from analyzer.sim.micro_time import decode_error
from analyzer.sim.patches import PatchError, json_merge, json_patch, strategic_merge
from analyzer.sim.resources import (
    EVENTS,
    NAMESPACES,
    PODS,
    ResourceType,
    groups,
    resource_for_path,
    resources_in,
)
from analyzer.sim.selectors import SelectorError, parse_field_selector, parse_label_selector
from analyzer.sim.store import (
    ApiError,
    BadRequest,
    Conflict,
    Gone,
    InternalError,
    Invalid,
    MethodNotAllowed,
    NotFound,
    ObjectStore,
    UnsupportedMediaType,
)

log = logging.getLogger("canary_analyzer.sim.api")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_WATCH_TIMEOUT = 1800.0


@dataclass(frozen=True)
class WriteRecord:
    """One write request as the fake API saw it (for "restarted exactly once" checks)."""

    sequence: int
    time: str
    method: str
    path: str
    query: str
    content_type: str
    status_code: int
    body: Any = None


@dataclass
class ApiContext:
    """Everything the handlers share."""

    store: ObjectStore
    controller: Controller
    faults: FaultState
    clock: SimClock
    kubernetes_version: str
    on_write: Callable[[WriteRecord], None]
    closing: asyncio.Event | None = None
    sequence: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class _TooManyRequests(ApiError):
    code, reason = 429, "TooManyRequests"


class _ServiceUnavailable(ApiError):
    code, reason = 503, "ServiceUnavailable"


class _Timeout(ApiError):
    code, reason = 504, "Timeout"


_INJECTED_ERRORS: dict[int, type[ApiError]] = {
    409: Conflict, 429: _TooManyRequests, 500: InternalError, 503: _ServiceUnavailable,
    504: _Timeout,
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status,
                    media_type="application/json")


def _error(error: ApiError) -> Response:
    response = _json(error.status_body(), error.code)
    if error.code == 429:
        response.headers["Retry-After"] = "1"
    return response


# -- discovery ---------------------------------------------------------------------------------

def _resource_list(group: str, version: str) -> dict[str, Any]:
    entries = []
    for rtype in resources_in(group, version):
        entries.append({"name": rtype.plural, "singularName": rtype.singular,
                        "namespaced": rtype.namespaced, "kind": rtype.kind,
                        "verbs": list(rtype.verbs), "shortNames": list(rtype.short_names)})
        if rtype.has_status:
            entries.append({"name": f"{rtype.plural}/status", "singularName": "",
                            "namespaced": rtype.namespaced, "kind": rtype.kind,
                            "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": entries}


def _api_group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


# -- events.k8s.io/v1 <-> core/v1 ------------------------------------------------------------------

def _event_from_events_api(body: dict[str, Any]) -> dict[str, Any]:
    event = {key: copy.deepcopy(value) for key, value in body.items()
             if key in ("metadata", "type", "reason", "action")}
    event["message"] = body.get("note", "")
    event["involvedObject"] = copy.deepcopy(body.get("regarding") or {})
    if body.get("related"):
        event["related"] = copy.deepcopy(body["related"])
    event["eventTime"] = body.get("eventTime")
    event["reportingComponent"] = body.get("reportingController", "")
    event["reportingInstance"] = body.get("reportingInstance", "")
    event["source"] = {"component": body.get("reportingController", "")}
    series = body.get("series") or {}
    event["count"] = series.get("count", 1)
    return event


def _event_to_events_api(event: dict[str, Any]) -> dict[str, Any]:
    result = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
              "metadata": copy.deepcopy(event.get("metadata") or {}),
              "type": event.get("type"), "reason": event.get("reason"),
              "note": event.get("message"), "regarding": event.get("involvedObject"),
              "eventTime": event.get("eventTime") or rfc3339_micro(datetime.now(UTC)),
              "reportingController": event.get("reportingComponent")
              or (event.get("source") or {}).get("component", ""),
              "reportingInstance": event.get("reportingInstance", ""),
              "action": event.get("action", "")}
    if event.get("firstTimestamp"):
        result["deprecatedFirstTimestamp"] = event["firstTimestamp"]
        result["deprecatedLastTimestamp"] = event.get("lastTimestamp")
        result["deprecatedCount"] = event.get("count")
    return {key: value for key, value in result.items() if value is not None}


def _present(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as this API version shows it."""
    if rtype.group == "events.k8s.io":
        return _event_to_events_api(obj)
    return obj


# -- tables for kubectl get --------------------------------------------------------------------

def _age(obj: dict[str, Any]) -> str:
    created = obj["metadata"].get("creationTimestamp")
    if not created:
        return "<unknown>"
    seconds = int((datetime.now(UTC) - datetime.strptime(
        created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _pod_status_column(pod: dict[str, Any]) -> str:
    """kubectl's STATUS: Terminating, else a finished pod's container reason (``Completed``),
    else the phase (kubernetes/kubernetes pkg/printers/internalversion printers.go
    printPod)."""
    if "deletionTimestamp" in pod["metadata"]:
        return "Terminating"
    status = pod.get("status") or {}
    if status.get("phase") == "Succeeded":
        for container in status.get("containerStatuses") or []:
            reason = ((container.get("state") or {}).get("terminated") or {}).get("reason")
            if reason:
                return str(reason)
    return str(status.get("phase", "Pending"))


def _table(rtype: ResourceType, items: list[dict[str, Any]], resource_version: int
           ) -> dict[str, Any]:
    columns: list[tuple[str, str, Callable[[dict[str, Any]], Any]]] = [
        ("Name", "string", lambda o: o["metadata"]["name"])]
    if rtype.kind == "Deployment":
        columns += [
            ("Ready", "string", lambda o: f"{(o.get('status') or {}).get('readyReplicas', 0)}/"
                                          f"{o['spec'].get('replicas', 1)}"),
            ("Up-to-date", "integer", lambda o: (o.get("status") or {}).get("updatedReplicas", 0)),
            ("Available", "integer",
             lambda o: (o.get("status") or {}).get("availableReplicas", 0))]
    elif rtype.kind == "Pod":
        def ready(o: dict[str, Any]) -> str:
            statuses = (o.get("status") or {}).get("containerStatuses") or []
            return f"{sum(1 for s in statuses if s.get('ready'))}/{len(o['spec']['containers'])}"
        columns += [("Ready", "string", ready),
                    ("Status", "string", _pod_status_column),
                    ("Restarts", "integer", lambda o: 0)]
    elif rtype.kind == "Namespace":
        columns += [("Status", "string", lambda o: (o.get("status") or {}).get("phase", ""))]
    columns.append(("Age", "string", _age))
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(resource_version)},
        "columnDefinitions": [{"name": name, "type": kind, "format": "name" if name == "Name"
                               else "", "description": name, "priority": 0}
                              for name, kind, _ in columns],
        "rows": [{"cells": [getter(item) for _, _, getter in columns],
                  "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": item["metadata"]}} for item in items],
    }


# -- request parsing -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def _target(group: str, version: str, rest: str) -> _Target:
    parts = [part for part in rest.split("/") if part]
    namespace = None
    if (len(parts) >= 3 and parts[0] == "namespaces"
            and resource_for_path(group, version, parts[2]) is not None):
        namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        raise NotFound("the server could not find the requested resource")
    rtype = resource_for_path(group, version, parts[0])
    if rtype is None:
        raise NotFound("the server could not find the requested resource")
    if namespace is not None and not rtype.namespaced:
        raise NotFound("the server could not find the requested resource")
    name = parts[1] if len(parts) >= 2 else None
    subresource = parts[2] if len(parts) == 3 else None
    if subresource is not None and not (subresource == "status" and rtype.has_status):
        raise NotFound("the server could not find the requested resource")
    if name is not None and rtype.namespaced and namespace is None:
        raise NotFound("the server could not find the requested resource")
    return _Target(rtype, namespace, name, subresource)


def _predicate(request: Request) -> Callable[[dict[str, Any]], bool]:
    try:
        labels = parse_label_selector(request.query_params.get("labelSelector"))
        fields = parse_field_selector(request.query_params.get("fieldSelector"))
    except SelectorError as error:
        raise BadRequest(f"unable to parse requirement: {error}") from None
    return lambda obj: labels.matches(obj["metadata"].get("labels")) and fields(obj)


async def _read_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise BadRequest("the request body is empty")
    content_type = request.headers.get("content-type", "application/json")
    if "yaml" in content_type:
        raise UnsupportedMediaType(f"the body of the request was in an unknown format - "
                                   f"accepted media types include: application/json "
                                   f"(got {content_type})")
    try:
        return json.loads(raw)
    except ValueError as error:
        raise BadRequest(f"the body of the request could not be decoded: {error}") from None


# -- the application -----------------------------------------------------------------------------

def build_api(context: ApiContext) -> Starlette:
    """The Starlette application of the fake API server."""
    store = context.store

    async def version(_request: Request) -> Response:
        major, minor, *_ = context.kubernetes_version.split(".")
        return _json({"major": major, "minor": minor,
                      "gitVersion": f"v{context.kubernetes_version}",
                      "gitCommit": "0000000000000000000000000000000000000000",
                      "gitTreeState": "clean", "buildDate": "2024-01-01T00:00:00Z",
                      "goVersion": "go1.21.0", "compiler": "gc", "platform": "linux/amd64"})

    async def core_versions(request: Request) -> Response:
        return _json({"kind": "APIVersions", "versions": ["v1"],
                      "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                      "serverAddress": request.url.netloc}]})

    async def group_list(_request: Request) -> Response:
        return _json({"kind": "APIGroupList", "apiVersion": "v1",
                      "groups": [_api_group(name, versions)
                                 for name, versions in groups().items()]})

    async def core_resources(_request: Request) -> Response:
        return _json(_resource_list("", "v1"))

    async def one_group(request: Request) -> Response:
        name = request.path_params["group"]
        versions = groups().get(name)
        if versions is None:
            return _error(NotFound("the server could not find the requested resource"))
        return _json({"kind": "APIGroup", "apiVersion": "v1", **_api_group(name, versions)})

    async def group_resources(request: Request) -> Response:
        group, api_version = request.path_params["group"], request.path_params["version"]
        if api_version not in groups().get(group, []):
            return _error(NotFound("the server could not find the requested resource"))
        return _json(_resource_list(group, api_version))

    async def core_objects(request: Request) -> Response:
        return await _serve(request, "", "v1", request.path_params["rest"])

    async def group_objects(request: Request) -> Response:
        return await _serve(request, request.path_params["group"],
                            request.path_params["version"], request.path_params["rest"])

    async def _serve(request: Request, group: str, api_version: str, rest: str) -> Response:
        method = request.method
        body: Any = None
        status_code = 500
        try:
            fault = context.faults.for_request(method, request.url.path)
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if method in WRITE_METHODS and (method != "DELETE" or await request.body()):
                body = await _read_body(request)  # a DELETE's DeleteOptions are optional
            if fault.status is not None:
                raise _INJECTED_ERRORS[fault.status](
                    f"injected fault: the server answered {fault.status}")
            if api_version not in (["v1"] if not group else groups().get(group, [])):
                raise NotFound("the server could not find the requested resource")
            target = _target(group, api_version, rest)
            response = await _dispatch(request, target, body)
            status_code = response.status_code
            return response
        except ApiError as error:
            status_code = error.code
            return _error(error)
        except PatchError as error:
            status_code = 422
            return _error(Invalid(str(error)))
        finally:
            if method in WRITE_METHODS:
                context.sequence += 1
                context.on_write(WriteRecord(
                    context.sequence, rfc3339(context.clock.wall_now()), method,
                    request.url.path, request.url.query,
                    request.headers.get("content-type", ""), status_code, body))

    async def _dispatch(request: Request, target: _Target, body: Any) -> Response:
        method = request.method
        rtype = target.rtype
        dry_run = request.query_params.get("dryRun") == "All"
        if target.name is None:
            if method == "GET":
                if request.query_params.get("watch") in ("1", "true", "True"):
                    return _watch(request, target)
                return _list(request, target)
            if method == "POST":
                return _create(target, body, dry_run)
            if method == "DELETE":
                return _delete_collection(request, target, body, dry_run)
            raise MethodNotAllowed(f"the server does not allow this method on the requested "
                                   f"resource ({method})")
        if method == "GET":
            return _json(_present(rtype, store.get(rtype, target.namespace, target.name)))
        if method == "PUT":
            return _replace(target, body, dry_run)
        if method == "PATCH":
            return _patch(request, target, body, dry_run)
        if method == "DELETE":
            return _delete(request, target, body, dry_run)
        raise MethodNotAllowed(f"the server does not allow this method ({method})")

    def _list(request: Request, target: _Target) -> Response:
        rtype = target.rtype
        items, resource_version = store.list(rtype, target.namespace, _predicate(request))
        offset = 0
        continue_token = request.query_params.get("continue")
        if continue_token:
            try:
                offset = int(json.loads(base64.b64decode(continue_token))["start"])
            except (ValueError, KeyError, TypeError):
                raise BadRequest("invalid continue token") from None
        metadata: dict[str, Any] = {"resourceVersion": str(resource_version)}
        limit = int(request.query_params.get("limit") or 0)
        if limit > 0 and len(items) > offset + limit:
            metadata["continue"] = base64.b64encode(json.dumps(
                {"start": offset + limit, "rv": resource_version}).encode()).decode()
            metadata["remainingItemCount"] = len(items) - offset - limit
            items = items[offset:offset + limit]
        else:
            items = items[offset:]
        if "as=Table" in request.headers.get("accept", ""):
            return _json(_table(rtype, items, resource_version))
        presented = []
        for item in items:
            shown = _present(rtype, item)
            shown.pop("apiVersion", None)
            shown.pop("kind", None)
            presented.append(shown)
        return _json({"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version,
                      "metadata": metadata, "items": presented})

    def _incoming(rtype: ResourceType, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        undecodable = decode_error(rtype.kind, rtype.version, body)
        if undecodable:
            raise BadRequest(undecodable)
        if body.get("kind") not in (None, "", rtype.kind):
            raise BadRequest(f"the kind of the body ({body.get('kind')}) is not {rtype.kind}")
        if rtype.group == "events.k8s.io":
            return _event_from_events_api(body)
        return body

    def _create(target: _Target, body: Any, dry_run: bool) -> Response:
        rtype = target.rtype
        obj = _incoming(rtype, body)
        if rtype.namespaced and target.namespace is None:
            raise NotFound("the server could not find the requested resource")
        if rtype is PODS:
            namespace = store.find(NAMESPACES, None, target.namespace or "") or {}
            obj = context.controller.admit_external_pod(obj, namespace)
        if rtype.storage_key == EVENTS.storage_key:
            metadata = obj.setdefault("metadata", {})
            if not metadata.get("name") and not metadata.get("generateName"):
                raise Invalid("Event is invalid: metadata.name: Required value")
            if not metadata.get("name"):  # the API server names it before validating
                metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
            errors = validate_event_create(obj, target.namespace or "",
                                           body if rtype.group == "events.k8s.io" else None)
            if errors:
                raise Invalid(invalid_message(metadata["name"], errors),
                              {"name": metadata["name"], "kind": "Event",
                               "causes": [error.cause() for error in errors]})
        if dry_run:
            candidate = copy.deepcopy(obj)
            candidate.setdefault("metadata", {})["namespace"] = target.namespace
            return _json(_present(rtype, candidate), 201)
        created = store.create(rtype, target.namespace, obj)
        return _json(_present(rtype, created), 201)

    def _replace(target: _Target, body: Any, dry_run: bool) -> Response:
        rtype = target.rtype
        obj = _incoming(rtype, body)
        if dry_run:
            store.get(rtype, target.namespace, target.name or "")
            return _json(_present(rtype, obj))
        updated = store.update(rtype, target.namespace, target.name or "", obj,
                               subresource=target.subresource)
        return _json(_present(rtype, updated))

    def _patch(request: Request, target: _Target, body: Any, dry_run: bool) -> Response:
        rtype = target.rtype
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        with store.lock:
            current = _present(rtype, store.get(rtype, target.namespace, target.name or ""))
            if content_type == "application/strategic-merge-patch+json":
                patched = strategic_merge(current, body)
            elif content_type == "application/merge-patch+json":
                patched = json_merge(current, body)
            elif content_type == "application/json-patch+json":
                patched = json_patch(current, body)
            else:
                raise UnsupportedMediaType(
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: application/json-patch+json, application/merge-patch+json, "
                    f"application/strategic-merge-patch+json (got {content_type!r})")
            if not isinstance(patched, dict):
                raise Invalid("the patched object is not a JSON object")
            sent_version = None
            if isinstance(body, dict):
                sent_version = (body.get("metadata") or {}).get("resourceVersion")
            if not sent_version:
                patched.setdefault("metadata", {})["resourceVersion"] = \
                    current["metadata"]["resourceVersion"]
            obj = _incoming(rtype, patched)
            if dry_run:
                return _json(_present(rtype, obj))
            updated = store.update(rtype, target.namespace, target.name or "", obj,
                                   subresource=target.subresource)
        return _json(_present(rtype, updated))

    def _delete(request: Request, target: _Target, body: Any, dry_run: bool) -> Response:
        """DELETE with DeleteOptions (propagationPolicy, preconditions): analyzer/sim/deletion.py.
        Gone at once: a ``Status`` Success; kept (foreground, finalizers, a pod terminating
        gracefully): the object as it now is."""
        rtype = target.rtype
        policy, preconditions = delete_options(body, dict(request.query_params))
        current = store.get(rtype, target.namespace, target.name or "")
        if dry_run:
            return _json(_present(rtype, current))
        kept = context.controller.garbage.delete(rtype, target.namespace, target.name or "",
                                                 policy, preconditions)
        if kept is not None:
            return _json(_present(rtype, kept))
        details: dict[str, Any] = {"name": target.name, "kind": rtype.plural,
                                   "uid": current["metadata"].get("uid")}
        if rtype.group:
            details["group"] = rtype.group
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Success", "details": details})

    def _delete_collection(request: Request, target: _Target, body: Any, dry_run: bool
                           ) -> Response:
        """deletecollection: every object the selectors match, each deleted as one DELETE
        would; the answer lists them (k8s.io/apiserver registry/store.go DeleteCollection)."""
        rtype = target.rtype
        policy, _preconditions = delete_options(body, dict(request.query_params))
        items, resource_version = store.list(rtype, target.namespace, _predicate(request))
        if not dry_run:
            for item in items:
                meta = item["metadata"]
                with contextlib.suppress(NotFound):  # gone meanwhile: not an error
                    context.controller.garbage.delete(rtype, meta.get("namespace"),
                                                      meta["name"], policy, {})
        presented = []
        for item in items:
            shown = _present(rtype, item)
            shown.pop("apiVersion", None)
            shown.pop("kind", None)
            presented.append(shown)
        return _json({"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version,
                      "metadata": {"resourceVersion": str(resource_version)},
                      "items": presented})

    def _watch(request: Request, target: _Target) -> Response:
        rtype = target.rtype
        predicate = _predicate(request)
        params = request.query_params
        requested = params.get("resourceVersion") or ""
        send_initial = params.get("sendInitialEvents") == "true"
        bookmarks = params.get("allowWatchBookmarks") == "true"
        timeout = float(params.get("timeoutSeconds") or _DEFAULT_WATCH_TIMEOUT)
        if requested not in ("", "0"):
            try:
                start_version = int(requested)
            except ValueError:
                raise BadRequest(f"invalid resourceVersion {requested!r}") from None
            if start_version < store.oldest_replayable_version():
                raise Gone(f"too old resource version: {start_version}")
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def wakeup() -> None:
            loop.call_soon_threadsafe(wake.set)

        def line(kind: str, obj: dict[str, Any]) -> bytes:
            return (json.dumps({"type": kind, "object": _present(rtype, obj)},
                               separators=(",", ":")) + "\n").encode()

        def in_scope(obj: dict[str, Any] | None) -> bool:
            return obj is not None and (target.namespace is None or obj["metadata"].get(
                "namespace") == target.namespace) and predicate(obj)

        async def stream() -> AsyncIterator[bytes]:
            store.add_wakeup(wakeup)
            try:
                if requested in ("", "0") or send_initial:
                    items, last = store.list(rtype, target.namespace, predicate)
                    for item in items:
                        yield line("ADDED", item)
                    if send_initial and bookmarks:
                        yield (json.dumps({"type": "BOOKMARK", "object": {
                            "kind": rtype.kind, "apiVersion": rtype.api_version,
                            "metadata": {"resourceVersion": str(last), "annotations": {
                                "k8s.io/initial-events-end": "true"}}}}) + "\n").encode()
                else:
                    last = int(requested)
                deadline = loop.time() + timeout
                while True:
                    wake.clear()
                    for change in store.changes_since(last, rtype.storage_key):
                        last = change.resource_version
                        now_in, was_in = in_scope(change.obj), in_scope(change.previous)
                        if change.type == "DELETED":
                            if was_in:
                                yield line("DELETED", change.obj)
                        elif now_in and not was_in:
                            yield line("ADDED", change.obj)
                        elif now_in:
                            yield line("MODIFIED", change.obj)
                        elif was_in:
                            yield line("DELETED", change.obj)
                    remaining = deadline - loop.time()
                    if remaining <= 0 or (context.closing and context.closing.is_set()):
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=min(remaining, 0.5))
            finally:
                store.remove_wakeup(wakeup)

        return StreamingResponse(stream(), media_type="application/json")

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    routes = [
        Route("/version", version),
        Route("/api", core_versions),
        Route("/api/v1", core_resources),
        Route("/apis", group_list),
        Route("/apis/{group}", one_group),
        Route("/apis/{group}/{version}", group_resources),
        Route("/api/v1/{rest:path}", core_objects, methods=methods),
        Route("/apis/{group}/{version}/{rest:path}", group_objects, methods=methods),
    ]

    async def not_found(_request: Request, _exc: Exception) -> Response:
        return _error(NotFound("the server could not find the requested resource"))

    return Starlette(routes=routes, exception_handlers={404: not_found})
