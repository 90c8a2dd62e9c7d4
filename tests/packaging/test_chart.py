"""The Helm chart, rendered by the real Helm engine, checked against what operators need.

Why: the chart is how the product reaches a cluster. A resource the API server rejects, a
wildcard in RBAC, a webhook permission wider than the tag, a root container or a writable
root filesystem, an undocumented value, or default rules that drifted from ``rules/``
would each ship silently without these checks.
"""

from __future__ import annotations

import filecmp
import os
import re
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from analyzer.settings import Settings
from tests.packaging.chart import (
    CHART,
    FULLNAME,
    NAMESPACE,
    REPO,
    container_env,
    kinds,
    one,
    render,
)
from tests.packaging.rbac_check import bound_rules

pytest.importorskip("helm_python", reason="helm-python-sdk (dev extra) renders the chart")

EVERYTHING = {
    "serviceMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "controlToken": {"value": "s3cret"},
}
#: Settings the chart sets itself (paths it mounts, the release namespace, the listen
#: address, the Pod name); every other setting is a key under ``config`` in values.yaml.
CHART_MANAGED = {
    ("rules", "directory"),
    ("kubernetes", "kubeconfig"),
    ("kubernetes", "context"),
    ("upgrade", "state_namespace"),
    ("service", "listen"),
    ("service", "token_file"),
    ("service", "identity"),
    ("service", "lease_namespace"),
    ("service", "reports_dir"),
}
#: Values whose in-cluster default differs from the product's (documented in values.yaml).
CHART_DEFAULTS = {("prometheus", "url"): "http://prometheus-operated.monitoring.svc:9090"}
BUILT_IN = {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
            "RoleBinding", "ConfigMap", "Secret", "Service"}  # fmt: skip


@pytest.fixture(scope="module")
def full():
    return render(EVERYTHING)


def test_renders_every_resource(full):
    # two more Roles and RoleBindings: the tag Services in Istio's namespace, the Events in
    # default (where the API server accepts Events about Namespaces)
    extra = ["Role", "Role", "RoleBinding", "RoleBinding"]
    assert kinds(full) == sorted([*BUILT_IN, *extra, "ServiceMonitor", "PrometheusRule"])
    assert kinds(render()) == sorted([*(BUILT_IN - {"Secret"}), *extra])


@pytest.mark.parametrize(
    "values",
    [{}, EVERYTHING, {"config": {"upgrade": {"style": "namespace-label"}}},
     {"controlToken": {"existingSecret": "ops-token"}, "replicaCount": 2}],
    ids=["defaults", "everything", "namespace-label", "existing-secret-two-replicas"],
)  # fmt: skip
def test_every_built_in_resource_is_valid_against_the_kubernetes_schema(values):
    version = kubernetes_validate.latest_version()
    for obj in render(values):
        if obj["kind"] in BUILT_IN:
            kubernetes_validate.validate(obj, version, strict=True)


def test_prometheus_operator_resources_are_well_formed(full):
    monitor = one(full, "ServiceMonitor")
    service = one(full, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"]
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
    rule = one(full, "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"CanaryAnalyzerAbsent", "CanaryAnalyzerNoHeartbeat", "CanaryAnalyzerUpgradeStuck",
            "CanaryAnalyzerQueryErrors", "CanaryAnalyzerRolledBack"} <= alerts  # fmt: skip


def _rules(objects):
    return [r for o in objects if o["kind"] in ("ClusterRole", "Role") for r in o["rules"]]


@pytest.mark.parametrize("style", ["tag", "namespace-label"])
def test_rbac_has_no_wildcards_and_is_bound_to_the_service_account(style):
    objects = render({"config": {"upgrade": {"style": style}}})
    for rule in _rules(objects):
        for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            assert not any("*" in v for v in rule.get(key) or []), (key, rule)
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    bound = bound_rules(objects, account, NAMESPACE)
    assert len(bound) == len(_rules(objects))  # every rule reaches the ServiceAccount
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account


def _grants(objects, group, resource, verb):
    return [
        r for r in _rules(objects)
        if group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
    ]  # fmt: skip


def test_webhook_writes_are_limited_to_the_tag_and_its_validator():
    objects = render({"rbac": {"extraTags": ["canary"]}})
    group = "admissionregistration.k8s.io"
    for resource in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        for verb in ("update", "patch", "delete", "create", "deletecollection"):
            for rule in _grants(objects, group, resource, verb):
                assert rule.get("resourceNames"), (resource, verb, rule)
    tag_rule, deactivate = _grants(objects, group, "mutatingwebhookconfigurations", "update")
    assert tag_rule["resourceNames"] == ["istio-revision-tag-default", "istio-revision-tag-canary"]
    # moving default deactivates the non-revisioned injector (istioctl tag set does)
    assert deactivate["resourceNames"] == ["istio-sidecar-injector"]
    assert deactivate["verbs"] == ["update"]
    (vwc,) = _grants(objects, group, "validatingwebhookconfigurations", "update")
    assert vwc["resourceNames"] == ["istiod-default-validator"]
    # a non-default tag never touches the default tag's validator
    other = render({"config": {"upgrade": {"tag": "prod"}}})
    (mwc,) = _grants(other, group, "mutatingwebhookconfigurations", "update")
    assert mwc["resourceNames"] == ["istio-revision-tag-prod"]
    assert not _grants(other, group, "validatingwebhookconfigurations", "update")


def test_namespaces_are_patched_only_in_the_namespace_label_style():
    assert not _grants(render(), "", "namespaces", "patch")
    assert _grants(
        render({"config": {"upgrade": {"style": "namespace-label"}}}), "", "namespaces", "patch"
    )


def _release_roles(objects):
    return [o for o in objects if o["kind"] == "Role" and o["metadata"]["namespace"] == NAMESPACE]


def test_state_and_lease_permissions_stay_in_the_release_namespace(full):
    (role,) = _release_roles(full)
    assert {r for rule in role["rules"] for r in rule["resources"]} == {"configmaps", "leases"}
    cluster_resources = {r for rule in one(full, "ClusterRole")["rules"] for r in rule["resources"]}
    assert not cluster_resources & {"configmaps", "leases", "secrets"}
    no_lease = render({"config": {"service": {"leader_election": False}}})
    (role,) = _release_roles(no_lease)
    assert {r for rule in role["rules"] for r in rule["resources"]} == {
        "configmaps"
    }


def test_pod_runs_non_root_with_a_read_only_root_filesystem(full):
    deployment = one(full, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in security["capabilities"]
    assert not security.get("privileged")
    assert container["resources"]["requests"] and container["resources"]["limits"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert deployment["spec"]["replicas"] == 1


def test_rules_configmap_is_mounted_where_the_service_reads_rules(full):
    deployment = one(full, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    directory = container_env(deployment)["CANARY_RULES__DIRECTORY"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    configmap = [o for o in full if o["kind"] == "ConfigMap"]
    assert [c["metadata"]["name"] for c in configmap] == [volume["configMap"]["name"]]
    shipped = configmap[0]["data"]
    assert sorted(shipped) == sorted(p.name for p in (REPO / "rules").glob("*.yaml"))
    for name, text in shipped.items():
        assert text == (REPO / "rules" / name).read_text()


def test_extra_rules_add_to_and_replace_the_defaults():
    extra = "apiVersion: canary-analyzer/v1\nkind: Rule\nmetadata:\n  name: mine\n"
    data = one(
        render({"rules": {"extraRules": {"mine.yaml": extra, "error-rate.yaml": extra}}}),
        "ConfigMap",
    )["data"]
    assert data["mine.yaml"] == extra and data["error-rate.yaml"] == extra
    assert "latency-p99.yaml" in data
    only = one(
        render({"rules": {"defaults": False, "extraRules": {"mine.yaml": extra}}}), "ConfigMap"
    )
    assert list(only["data"]) == ["mine.yaml"]


def test_rendered_rules_pass_the_products_own_lint(tmp_path):
    data = one(render(), "ConfigMap")["data"]
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", "rules", "lint", str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_charts_rules_copy_equals_the_repositorys_rules():
    ours = sorted(p.name for p in (CHART / "rules").glob("*.yaml"))
    theirs = sorted(p.name for p in (REPO / "rules").glob("*.yaml"))
    assert ours == theirs, "refresh with: cp rules/*.yaml helm/canary-analyzer/rules/"
    _, mismatch, errors = filecmp.cmpfiles(REPO / "rules", CHART / "rules", theirs, shallow=False)
    assert not mismatch and not errors, "refresh with: cp rules/*.yaml helm/canary-analyzer/rules/"


def test_every_values_key_is_commented():
    lines = (CHART / "values.yaml").read_text().splitlines()
    key = re.compile(r"^\s*(- )?[A-Za-z_][\w.-]*:( |$)")
    missing = []
    for number, line in enumerate(lines, 1):
        if not key.match(line):
            continue
        previous = next((p.strip() for p in reversed(lines[: number - 1]) if p.strip()), "")
        if not previous.startswith("#"):
            missing.append(f"values.yaml:{number}: {line.strip()}")
    assert not missing, "keys without a comment above them:\n" + "\n".join(missing)


def test_values_config_maps_every_setting_and_nothing_else():
    config = yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    for group, model in Settings.model_fields.items():
        fields = set(model.annotation.model_fields)
        expected = {f for f in fields if (group, f) not in CHART_MANAGED}
        assert set(config.get(group, {})) == expected, group
    assert set(config) <= set(Settings.model_fields)


def test_rendered_environment_parses_into_the_products_settings(monkeypatch):
    deployment = one(render(EVERYTHING), "Deployment")
    env = container_env(deployment)
    for name in list(os.environ):
        if name.startswith("CANARY_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    loaded = Settings()
    defaults = Settings.model_construct(
        **{g: m.default_factory() for g, m in Settings.model_fields.items()}
    )
    for group, model in Settings.model_fields.items():
        for field in model.annotation.model_fields:
            got = getattr(getattr(loaded, group), field)
            if (group, field) in CHART_MANAGED:
                continue
            want = CHART_DEFAULTS.get((group, field), getattr(getattr(defaults, group), field))
            assert got == want, (
                f"config.{group}.{field}: chart gives {got!r}, product default {want!r}"
            )
    assert str(loaded.rules.directory) == "/etc/canary-analyzer/rules"
    assert loaded.kubernetes.kubeconfig is None  # in-cluster configuration
    assert loaded.upgrade.state_namespace == NAMESPACE
    assert loaded.service.lease_namespace == NAMESPACE
    assert loaded.service.listen == "0.0.0.0:8080"
    assert str(loaded.service.token_file) == "/var/run/secrets/canary-analyzer/token"


def test_values_reach_the_environment():
    env = container_env(one(render({"config": {
        "upgrade": {"waves": [1, 3], "gateways": ["gw/ingress", "gw/egress"]},
        "prometheus": {"headers": {"X-Scope-OrgID": "t1"}, "retries": 0},
        "service": {"window_cron": "0 1 * * *"},
    }}), "Deployment"))  # fmt: skip
    assert env["CANARY_UPGRADE__WAVES"] == "[1,3]"
    assert env["CANARY_UPGRADE__GATEWAYS"] == '["gw/ingress","gw/egress"]'
    assert env["CANARY_PROMETHEUS__HEADERS"] == '{"X-Scope-OrgID":"t1"}'
    assert env["CANARY_PROMETHEUS__RETRIES"] == "0"  # zero is a value, not "unset"
    assert env["CANARY_SERVICE__WINDOW_CRON"] == "0 1 * * *"
    assert "CANARY_NOTIFICATIONS__WEBHOOK_URL" not in env  # empty: product default


def test_control_token_comes_from_an_existing_secret_or_one_the_chart_creates():
    objects = render({"controlToken": {"existingSecret": "ops", "existingSecretKey": "bearer"}})
    assert "Secret" not in kinds(objects)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == "ops"
    assert volume["secret"]["items"] == [{"key": "bearer", "path": "token"}]
    assert "--token-file" in pod["containers"][0]["args"]
    created = render({"controlToken": {"value": "s3cret"}})
    secret = one(created, "Secret")
    pod = one(created, "Deployment")["spec"]["template"]["spec"]
    assert [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v] == [
        secret["metadata"]["name"]
    ]
    no_token = one(render(), "Deployment")["spec"]["template"]["spec"]
    assert "--token-file" not in no_token["containers"][0]["args"]
    assert not [v for v in no_token["volumes"] if "secret" in v]


def test_replicas_need_leader_election_and_single_replicas_never_overlap():
    import helm_python

    with pytest.raises(helm_python.HelmError, match="leader_election"):
        render({"replicaCount": 2, "config": {"service": {"leader_election": False}}})
    single = one(render({"config": {"service": {"leader_election": False}}}), "Deployment")
    assert single["spec"]["strategy"]["type"] == "Recreate"
    assert one(render({"replicaCount": 3}), "Deployment")["spec"]["replicas"] == 3


@pytest.mark.parametrize(
    "key",
    ["rules.directory", "kubernetes.kubeconfig", "kubernetes.context", "upgrade.state_namespace",
     "service.listen"],
)
def test_chart_managed_settings_cannot_be_overridden(key):
    import helm_python

    group, field = key.split(".")
    with pytest.raises(helm_python.HelmError, match=re.escape(f"config.{key} is set by the chart")):
        render({"config": {group: {field: "/elsewhere"}}})


def test_helm_lint_is_clean():
    import helm_python

    report = helm_python.lint(str(CHART), values=EVERYTHING, strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


def test_resource_names_carry_the_release(full):
    for obj in full:
        assert obj["metadata"]["name"].startswith(FULLNAME), obj["metadata"]["name"]


WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "bind", "escalate",
               "impersonate", "approve"}  # fmt: skip


def test_shadow_mode_grants_no_write_verb_and_runs_one_replica():
    """``config.service.mode: shadow``: the service judges restarts made by others and acts on
    nothing, so its ServiceAccount can write nothing — no tag webhook, workload, namespace,
    ConfigMap, Lease or Event — even with prune enabled; it still reads what it watches."""
    import helm_python

    objects = render({"config": {"service": {"mode": "shadow"}, "upgrade": {"style": "namespace-label"}},
                      "prune": {"enabled": True}})  # fmt: skip
    rules = _rules(objects)
    assert rules, "shadow mode still reads"
    for rule in rules:
        assert not set(rule["verbs"]) & WRITE_VERBS, rule
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    assert len(bound_rules(objects, account, NAMESPACE)) == len(rules)
    assert _grants(objects, "apps", "deployments", "list")
    assert _grants(objects, "", "namespaces", "list")
    env = container_env(one(objects, "Deployment"))
    assert env["CANARY_SERVICE__MODE"] == "shadow"
    # the act mode keeps its writes (the same values otherwise)
    acting = render({"config": {"upgrade": {"style": "namespace-label"}}})
    assert any(set(r["verbs"]) & WRITE_VERBS for r in _rules(acting))
    with pytest.raises(helm_python.HelmError, match="shadow runs one replica"):
        render({"replicaCount": 2, "config": {"service": {"mode": "shadow"}}})
    with pytest.raises(helm_python.HelmError):
        render({"config": {"service": {"mode": "dry"}}})
