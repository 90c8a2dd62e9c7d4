"""Deleting objects as the API server and kube-controller-manager's garbage collector do.

Why it exists: the prune (``canary-analyzer prune``) deletes a control plane with
``propagationPolicy``; the simulated mesh must give the answers and leave the cluster in the
state the real system would, or the tests prove nothing. Behaviour and its real source:

- ``DeleteOptions.preconditions`` (``uid``, ``resourceVersion``) that do not match the stored
  object fail with 409 Conflict "Precondition failed" (k8s.io/apiserver
  ``pkg/storage/interfaces.go`` ``Preconditions.Check``).
- ``propagationPolicy`` (k8s.io/apiserver ``pkg/registry/generic/registry/store.go``
  ``Delete``, ``deletionFinalizersForGarbageCollection``,
  ``updateForGracefulDeletionAndFinalizers``):
  ``Orphan`` removes the object's ownerReference from its dependents (the GC's ``orphan``
  finalizer), then the object; ``Background`` removes the object at once and the garbage
  collector later deletes every dependent whose owners are all gone; ``Foreground`` keeps
  the object, with ``deletionTimestamp`` and the finalizer ``foregroundDeletion``, until the
  collector has deleted its dependents (those with ``blockOwnerDeletion``), then removes it
  (kubernetes ``pkg/controller/garbagecollector/garbagecollector.go``
  ``attemptToDeleteItem``, ``processDeletingDependentsItem``).
- Without a policy each resource's default applies: ``Orphan`` for ``batch/v1`` Jobs
  (kubernetes ``pkg/registry/batch/job/strategy.go`` ``DefaultGarbageCollectionPolicy``),
  ``Background`` for everything else served here.
- An object that still carries other finalizers is only marked (``deletionTimestamp``).
- Pods are deleted gracefully through the simulated kubelet (``Controller.delete_pod``).
- ``deletecollection`` (DELETE on a collection, with label and field selectors) deletes every
  match with the same options and answers with the list of what it deleted
  (``store.go`` ``DeleteCollection``).
Owner references to kinds this API does not serve (an operator's custom resources) are
never resolved, so they never make a dependent an orphan.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from analyzer.sim.clock import SimClock, rfc3339
from analyzer.sim.resources import JOBS, PODS, RESOURCE_TYPES, ResourceType, resource_for_kind
from analyzer.sim.store import BadRequest, Conflict, ObjectStore

FOREGROUND = "foregroundDeletion"
POLICIES = ("Orphan", "Background", "Foreground")


def _served(api_version: str, kind: str) -> ResourceType | None:
    group = api_version.split("/")[0] if "/" in api_version else ""
    try:
        return resource_for_kind(group, kind)
    except KeyError:
        return None


def delete_options(body: Any, query: dict[str, str]) -> tuple[str | None, dict[str, Any]]:
    """(propagationPolicy, preconditions) from a DELETE's body and query string."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadRequest("the DeleteOptions body must be a JSON object")
    policy = body.get("propagationPolicy") or query.get("propagationPolicy")
    if body.get("orphanDependents") is not None and policy is None:
        policy = "Orphan" if body["orphanDependents"] else "Background"
    if policy is not None and policy not in POLICIES:
        raise BadRequest(f"DeleteOptions.propagationPolicy: Unsupported value: {policy!r}: "
                         f"supported values: {', '.join(repr(p) for p in POLICIES)}")
    return policy, body.get("preconditions") or {}


class GarbageCollector:
    """Deletes with DeleteOptions semantics; ``collect()`` runs the collector's pass."""

    def __init__(self, store: ObjectStore, clock: SimClock,
                 delete_pod: Callable[[str, str], dict[str, Any]]) -> None:
        self._store = store
        self._clock = clock
        self._delete_pod = delete_pod
        self._dirty = False

    # -- the API's DELETE --------------------------------------------------------------------

    def delete(self, rtype: ResourceType, namespace: str | None, name: str,
               policy: str | None, preconditions: dict[str, Any]) -> dict[str, Any] | None:
        """Delete one object; the object when it is kept (marked), None when it is gone."""
        with self._store.lock:
            current = self._store.get(rtype, namespace, name)
            meta = current["metadata"]
            for key in ("uid", "resourceVersion"):
                wanted = preconditions.get(key)
                if wanted and wanted != meta.get(key):
                    raise Conflict(f"Precondition failed: {key.upper() if key == 'uid' else key}"
                                   f" in precondition: {wanted}, {key} in object meta: "
                                   f"{meta.get(key)}",
                                   {"name": name, "kind": rtype.plural})
            self._dirty = True
            if rtype is PODS:
                return self._delete_pod(namespace or "", name)
            if policy is None:
                policy = "Orphan" if rtype is JOBS else "Background"
            if policy == "Orphan":
                self._orphan_dependents(meta["uid"])
            finalizers = list(meta.get("finalizers") or [])
            if policy == "Foreground" and FOREGROUND not in finalizers:
                finalizers.append(FOREGROUND)
            if finalizers:
                marked = copy.deepcopy(current)
                marked["metadata"]["finalizers"] = finalizers
                marked["metadata"].setdefault("deletionTimestamp",
                                              rfc3339(self._clock.wall_now()))
                marked["metadata"].setdefault("deletionGracePeriodSeconds", 0)
                return self._store.update(rtype, namespace, name, marked, internal=True)
            self._store.delete(rtype, namespace, name)
            return None

    def _orphan_dependents(self, owner_uid: str) -> None:
        for rtype in _collectable_types():
            for obj in self._store.list(rtype)[0]:
                refs = obj["metadata"].get("ownerReferences") or []
                kept = [ref for ref in refs if ref.get("uid") != owner_uid]
                if len(kept) != len(refs):
                    obj["metadata"]["ownerReferences"] = kept
                    if not kept:
                        obj["metadata"].pop("ownerReferences")
                    self._store.update(rtype, obj["metadata"].get("namespace"),
                                       obj["metadata"]["name"], obj, internal=True)

    # -- the garbage collector's pass --------------------------------------------------------

    def collect(self) -> None:
        """Delete orphaned dependents and finish foreground deletions (after a delete only)."""
        if not self._dirty:
            return
        with self._store.lock:
            objects = [(rtype, obj) for rtype in _collectable_types()
                       for obj in self._store.list(rtype, copy_objects=False)[0]]
            by_uid = {obj["metadata"]["uid"]: obj for _rtype, obj in objects}
            busy = False
            for rtype, obj in objects:
                meta = obj["metadata"]
                refs = meta.get("ownerReferences") or []
                resolvable = [ref for ref in refs
                              if _served(ref.get("apiVersion", ""), ref.get("kind", ""))]
                if not resolvable or len(resolvable) != len(refs) or "deletionTimestamp" in meta:
                    continue
                owners = [by_uid.get(ref.get("uid")) for ref in resolvable]
                if all(owner is None for owner in owners):
                    busy = True
                    self._remove(rtype, meta, "Background")
                elif any(owner is not None and FOREGROUND in (
                        owner["metadata"].get("finalizers") or []) for owner in owners):
                    busy = True
                    self._remove(rtype, meta, "Foreground")
            blocking = {ref.get("uid") for _rtype, obj in self._store_objects()
                        for ref in obj["metadata"].get("ownerReferences") or []
                        if ref.get("blockOwnerDeletion")}
            for rtype, obj in self._store_objects():
                meta = obj["metadata"]
                if "deletionTimestamp" not in meta or rtype is PODS:
                    continue
                finalizers = list(meta.get("finalizers") or [])
                if FOREGROUND in finalizers:
                    busy = True
                    if meta["uid"] in blocking:
                        continue
                    finalizers.remove(FOREGROUND)
                if finalizers:
                    continue
                self._store.delete(rtype, meta.get("namespace"), meta["name"])
                busy = True
            self._dirty = busy

    def _store_objects(self) -> list[tuple[ResourceType, dict[str, Any]]]:
        return [(rtype, obj) for rtype in _collectable_types()
                for obj in self._store.list(rtype, copy_objects=False)[0]]

    def _remove(self, rtype: ResourceType, meta: dict[str, Any], policy: str) -> None:
        self.delete(rtype, meta.get("namespace"), meta["name"], policy, {})


def _collectable_types() -> list[ResourceType]:
    return [rtype for rtype in RESOURCE_TYPES if rtype.storage is None and rtype.kind != "Event"]
