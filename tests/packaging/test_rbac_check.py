"""The RBAC-from-calls checker on its own: Kubernetes' matching rules, denied and unused grants.

Why: the exactness test of the chart (test_rbac_e2e.py) is only as good as this checker.
"""

from __future__ import annotations

import pytest

from tests.packaging.rbac_check import ApiCall, Rule, bound_rules, call_from_request, check


def cluster(resources, verbs, groups=("",), names=()):
    return Rule("ClusterRole/x", tuple(groups), tuple(resources), tuple(verbs), tuple(names))


def role(resources, verbs, namespace="ops", groups=("",), names=()):
    return Rule("Role/x", tuple(groups), tuple(resources), tuple(verbs), tuple(names), namespace)


@pytest.mark.parametrize(
    ("method", "path", "query", "call"),
    [
        ("GET", "/api/v1/namespaces", "labelSelector=a", ApiCall("list", "", "namespaces")),
        ("GET", "/api/v1/namespaces/bar", "", ApiCall("get", "", "namespaces", None, "bar")),
        ("PATCH", "/api/v1/namespaces/bar", "", ApiCall("patch", "", "namespaces", None, "bar")),
        ("GET", "/api/v1/namespaces/bar/pods", "", ApiCall("list", "", "pods", "bar")),
        ("GET", "/api/v1/pods", "watch=true", ApiCall("watch", "", "pods")),
        ("PATCH", "/apis/apps/v1/namespaces/bar/deployments/api", "",
         ApiCall("patch", "apps", "deployments", "bar", "api")),
        ("PUT", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/t", "",
         ApiCall("update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", None, "t")),
        ("POST", "/api/v1/namespaces/bar/events", "", ApiCall("create", "", "events", "bar")),
        ("PUT", "/apis/apps/v1/namespaces/bar/deployments/api/status", "",
         ApiCall("update", "apps", "deployments/status", "bar", "api")),
        ("DELETE", "/api/v1/namespaces/bar/pods", "", ApiCall("deletecollection", "", "pods", "bar")),
        ("GET", "/apis", "", None),
        ("GET", "/version", "", None),
    ],
)  # fmt: skip
def test_requests_become_the_authorizers_calls(method, path, query, call):
    assert call_from_request(method, path, query) == call


def test_exact_rules_allow_every_call_and_nothing_more():
    calls = [
        ApiCall("list", "", "pods", "bar"),
        ApiCall("list", "", "pods", "foo"),
        ApiCall("get", "", "configmaps", "ops", "state"),
    ]
    rules = [cluster(["pods"], ["list"]), role(["configmaps"], ["get"], names=["state"])]
    report = check(calls, rules)
    assert report.exact, report


def test_a_missing_grant_is_reported_as_denied():
    report = check([ApiCall("patch", "apps", "deployments", "bar", "api")],
                   [cluster(["deployments"], ["get", "list"], groups=["apps"])])  # fmt: skip
    assert report.denied == [ApiCall("patch", "apps", "deployments", "bar", "api")]
    assert {p.verb for p in report.unused} == {"get", "list"}


def test_role_rules_do_not_reach_other_namespaces():
    report = check([ApiCall("get", "", "configmaps", "istio-system", "state")],
                   [role(["configmaps"], ["get"], namespace="ops")])  # fmt: skip
    assert report.denied and report.unused


def test_resource_names_never_allow_list_or_create():
    names = ["istio-revision-tag-default"]
    group = ["admissionregistration.k8s.io"]
    rules = [cluster(["mutatingwebhookconfigurations"], ["list", "create", "update"], group, names)]
    calls = [
        ApiCall("list", group[0], "mutatingwebhookconfigurations"),
        ApiCall("create", group[0], "mutatingwebhookconfigurations"),
        ApiCall("update", group[0], "mutatingwebhookconfigurations", None, "istio-revision-tag-default"),
        ApiCall("update", group[0], "mutatingwebhookconfigurations", None, "istio-sidecar-injector-1-15-4"),
    ]  # fmt: skip
    report = check(calls, rules)
    assert [c.verb for c in report.denied] == ["create", "list", "update"]
    assert report.denied[-1].name == "istio-sidecar-injector-1-15-4"


def test_unused_permissions_are_reported_per_verb_resource_and_name():
    rules = [cluster(["deployments", "statefulsets"], ["get", "patch"], ["apps"])]
    report = check([ApiCall("get", "apps", "deployments", "a", "x")], rules)
    assert sorted((p.verb, p.resource) for p in report.unused) == [
        ("get", "statefulsets"), ("patch", "deployments"), ("patch", "statefulsets"),
    ]  # fmt: skip


def test_wildcards_are_flagged_even_when_they_allow_the_calls():
    report = check([ApiCall("list", "", "pods")], [cluster(["*"], ["*"])])
    assert not report.denied
    assert len(report.wildcards) == 2 and not report.exact


def test_only_roles_bound_to_the_service_account_count():
    manifests = [
        {"kind": "ClusterRole", "metadata": {"name": "a"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]},
        {"kind": "ClusterRole", "metadata": {"name": "unbound"},
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]},
        {"kind": "ClusterRoleBinding", "metadata": {"name": "a"},
         "roleRef": {"kind": "ClusterRole", "name": "a"},
         "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ops"}]},
        {"kind": "Role", "metadata": {"name": "r", "namespace": "ops"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        {"kind": "RoleBinding", "metadata": {"name": "r", "namespace": "ops"},
         "roleRef": {"kind": "Role", "name": "r"},
         "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ops"}]},
        {"kind": "RoleBinding", "metadata": {"name": "other", "namespace": "ops"},
         "roleRef": {"kind": "Role", "name": "r"},
         "subjects": [{"kind": "ServiceAccount", "name": "someone-else", "namespace": "ops"}]},
    ]  # fmt: skip
    rules = bound_rules(manifests, "sa", "ops")
    assert [(r.role, r.resources, r.namespace) for r in rules] == [
        ("ClusterRole/a", ("pods",), None),
        ("Role/r", ("configmaps",), "ops"),
    ]
