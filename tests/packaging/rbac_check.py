"""RBAC from API calls: is every call allowed, and is every granted permission used?

Pure functions over plain data, so the chart's rules can be checked against the calls the
engine really makes (``test_rbac_e2e.py``) and unit-tested on their own
(``test_rbac_check.py``).

Semantics follow Kubernetes RBAC (``rbac/v1`` authorizer):
- a ClusterRole bound by a ClusterRoleBinding applies in every namespace and to
  cluster-scoped resources; a Role bound by a RoleBinding only in its own namespace;
- a rule matches when the call's API group, resource (``resource/subresource`` for
  subresources), and verb are listed (``*`` matches anything: the chart must never use it);
- a rule with ``resourceNames`` matches only calls naming one of them, so it can never
  allow ``list``, ``watch``, ``create`` or ``deletecollection`` (no name in the request).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True, order=True)
class ApiCall:
    """One request as the authorizer sees it."""

    verb: str
    group: str
    resource: str
    namespace: str | None = None
    name: str | None = None

    def describe(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        named = f" {self.name}" if self.name else ""
        return f"{self.verb} {self.resource}.{self.group or 'core'}{named}{where}"


@dataclass(frozen=True)
class Rule:
    """One PolicyRule of a bound role; ``namespace`` is None for a ClusterRole."""

    role: str
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...] = ()
    namespace: str | None = None


@dataclass(frozen=True, order=True)
class Permission:
    """The smallest grant: one verb on one resource (optionally one name) in one scope."""

    role: str
    verb: str
    group: str
    resource: str
    name: str | None
    namespace: str | None

    def describe(self) -> str:
        scope = f"namespace {self.namespace}" if self.namespace else "cluster"
        named = f" {self.name}" if self.name else ""
        return f"{self.role}: {self.verb} {self.resource}.{self.group or 'core'}{named} ({scope})"


@dataclass
class RbacReport:
    denied: list[ApiCall] = field(default_factory=list)
    unused: list[Permission] = field(default_factory=list)
    wildcards: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not (self.denied or self.unused or self.wildcards)


def _matches(values: Sequence[str], value: str) -> bool:
    return "*" in values or value in values


def permissions(rule: Rule) -> list[Permission]:
    """Expand a rule into its single-verb, single-resource, single-name grants."""
    names: Sequence[str | None] = rule.resource_names or (None,)
    return [
        Permission(rule.role, verb, group, resource, name, rule.namespace)
        for group in rule.api_groups
        for resource in rule.resources
        for verb in rule.verbs
        for name in names
    ]


def grants(permission: Permission, call: ApiCall) -> bool:
    """Does this single grant allow the call?"""
    if permission.namespace is not None and call.namespace != permission.namespace:
        return False
    if permission.name is not None and call.name != permission.name:
        return False
    return (
        _matches((permission.group,), call.group)
        and _matches((permission.resource,), call.resource)
        and _matches((permission.verb,), call.verb)
    )


def check(calls: Iterable[ApiCall], rules: Iterable[Rule]) -> RbacReport:
    """Every call must be allowed by some rule; every permission must allow some call."""
    rules = list(rules)
    report = RbacReport()
    for rule in rules:
        for label, values in (
            ("apiGroups", rule.api_groups),
            ("resources", rule.resources),
            ("verbs", rule.verbs),
            ("resourceNames", rule.resource_names),
        ):
            if any("*" in value for value in values):
                report.wildcards.append(f"{rule.role}: wildcard in {label} {list(values)}")
    grants_list = [p for rule in rules for p in permissions(rule)]
    used: set[Permission] = set()
    # cluster-wide calls (namespace None) sort before namespaced ones of the same resource
    for call in sorted(
        set(calls), key=lambda c: (c.verb, c.group, c.resource, c.namespace or "", c.name or "")
    ):
        allowing = [p for p in grants_list if grants(p, call)]
        if not allowing:
            report.denied.append(call)
        used.update(allowing)
    report.unused = sorted(p for p in grants_list if p not in used)
    return report


def bound_rules(manifests: Iterable[dict[str, Any]], account: str, namespace: str) -> list[Rule]:
    """Rules of every (Cluster)Role bound to ServiceAccount ``namespace/account``."""
    docs = [m for m in manifests if m]
    cluster_roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    roles = {
        (d["metadata"].get("namespace"), d["metadata"]["name"]): d
        for d in docs
        if d["kind"] == "Role"
    }

    def bound(binding: dict[str, Any]) -> bool:
        return any(
            s.get("kind") == "ServiceAccount"
            and s.get("name") == account
            and s.get("namespace") == namespace
            for s in binding.get("subjects") or []
        )

    found: list[Rule] = []
    for binding in docs:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding") or not bound(binding):
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        if ref["kind"] == "ClusterRole":
            role = cluster_roles.get(ref["name"])
        else:
            role = roles.get((scope, ref["name"]))
        if role is None:
            continue
        label = f"{role['kind']}/{role['metadata']['name']}"
        for rule in role.get("rules") or []:
            found.append(
                Rule(
                    role=label,
                    api_groups=tuple(rule.get("apiGroups") or ()),
                    resources=tuple(rule.get("resources") or ()),
                    verbs=tuple(rule.get("verbs") or ()),
                    resource_names=tuple(rule.get("resourceNames") or ()),
                    namespace=scope,
                )
            )
    return found


def call_from_request(method: str, path: str, query: str = "") -> ApiCall | None:
    """The authorizer's view of an HTTP request; None for discovery (non-resource) URLs."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else None
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    if resource == "namespaces" and name is not None:
        namespace = None  # a Namespace object is cluster-scoped
    watch = parse_qs(query).get("watch", [""])[0] in ("1", "true", "True")
    method = method.upper()
    if method == "GET":
        verb = "watch" if watch else ("get" if name else "list")
    elif method == "POST":
        verb = "create"
    elif method == "PUT":
        verb = "update"
    elif method == "PATCH":
        verb = "patch"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        raise ValueError(f"no RBAC verb for HTTP {method}")
    return ApiCall(verb, group, resource, namespace, name)
