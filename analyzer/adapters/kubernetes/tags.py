"""Revision tags: listed as ``istioctl tag list`` finds them, and moved as ``istioctl tag
set <tag> --revision <rev> --overwrite`` moves them.

Why it exists: moving the tag is the upgrade's one change to the control plane's routing
(docs/architecture.md, "Moving the tag"). ``istioctl tag set`` (istioctl/pkg/tag/generate.go,
tag.go, util.go) reads the revision's own injector webhook ("canonical": labelled
istio.io/rev=<rev> without istio.io/tag) and renders from the istio-discovery chart
(templates/revision-tags-mwc.yaml, revision-tags-svc.yaml) the tag webhook, the tag Service
and, for ``default``, the default chart's istiod-default-validator, then server-side applies
them. What the charts put there for the new revision is what the move writes, field by
field; everything else on the objects stays as their owner left it.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kubernetes.client.exceptions import ApiException

from analyzer.adapters.kubernetes.api import ClusterApi
from analyzer.adapters.kubernetes.objects import MANAGED_BY, labels_of, meta_of
from analyzer.adapters.kubernetes.webhooks import (
    DEFAULT_VALIDATOR,
    INJECTOR_SUFFIX,
    NEVER_MATCH,
    OPERATOR_LABELS,
    TAG_LABEL,
    endpoint_of,
    injector_client_config,
    ownership_warnings,
    tag_webhook_name,
)
from analyzer.core.ports import ClusterError, ClusterNotFoundError, TagInfo
from analyzer.core.upgrade import REVISION_LABEL

log = logging.getLogger("canary_analyzer.kubernetes")


class TagMoves(ClusterApi):
    """The tags there are, and moving one to a revision."""

    def tags(self) -> dict[str, TagInfo]:
        """Every tag with a webhook (``istio.io/tag`` label), as ``istioctl tag list`` finds
        them; the owners of its webhook, tag Service and (``default``) validator warned of."""
        webhooks: dict[str, dict[str, Any]] = {}
        for mwc in self._items(
            "list tag webhooks",
            self.admission.list_mutating_webhook_configuration,
            label_selector=TAG_LABEL,
        ):
            name = labels_of(mwc)[TAG_LABEL]
            # several Istio installs: prefer the webhook named for our namespace
            if name not in webhooks or meta_of(mwc).get("name") == self._tag_webhook_name(name):
                webhooks[name] = mwc
        services = {
            labels_of(svc).get(TAG_LABEL): svc
            for svc in self._items(
                "list tag services",
                self.core.list_namespaced_service,
                self.istio_namespace,
                label_selector=TAG_LABEL,
            )
        }
        found = {}
        for name, mwc in webhooks.items():
            labels = labels_of(mwc)
            warnings = list(ownership_warnings("MutatingWebhookConfiguration", mwc))
            service = services.get(name)
            if service is not None:
                warnings += ownership_warnings("Service", service)
            if name == "default":
                validator = self._validator()
                if validator is not None:
                    warnings += ownership_warnings("ValidatingWebhookConfiguration", validator)
            found[name] = TagInfo(
                name=name,
                revision=labels.get(REVISION_LABEL, ""),
                managed_by=labels.get(MANAGED_BY),
                warnings=tuple(warnings),
                webhook=meta_of(mwc).get("name"),
                service=meta_of(service).get("name") if service else None,
            )
        return found

    def _tag_webhook_name(self, tag: str) -> str:
        return tag_webhook_name(tag, self.istio_namespace)

    def _canonical_injector(self, revision: str) -> tuple[dict[str, str], dict[str, Any]]:
        """(labels, first ``*sidecar-injector.istio.io`` webhook) of the revision's own
        injector MWC (util.go GetWebhooksWithRevision; generate.go
        tagWebhookConfigFromCanonicalWebhook)."""
        injectors = self._items(
            f"injector of revision {revision}",
            self.admission.list_mutating_webhook_configuration,
            label_selector=f"{REVISION_LABEL}={revision},!{TAG_LABEL}",
        )
        own = {
            f"istio-sidecar-injector-{revision}",
            f"istio-sidecar-injector-{revision}-{self.istio_namespace}",
        }
        injectors.sort(key=lambda m: meta_of(m).get("name") not in own)
        for mwc in injectors:
            for webhook in mwc.get("webhooks") or []:
                if webhook.get("name", "").endswith(INJECTOR_SUFFIX):
                    return labels_of(mwc), webhook
        raise ClusterNotFoundError(
            f"revision {revision} has no injector MutatingWebhookConfiguration "
            f"(selector {REVISION_LABEL}={revision},!{TAG_LABEL})"
        )

    def _read_tag_webhook(self, tag: str) -> dict[str, Any]:
        """The tag's MWC: by the chart's name, else the only one labelled with the tag."""
        name = self._tag_webhook_name(tag)
        try:
            return self._json(self.admission.read_mutating_webhook_configuration, name)
        except ApiException as error:
            if error.status != 404:
                raise
        found = (
            self._json(
                self.admission.list_mutating_webhook_configuration,
                label_selector=f"{TAG_LABEL}={tag}",
            ).get("items")
            or []
        )
        if len(found) != 1:
            raise ClusterNotFoundError(
                f"tag {tag}: no MutatingWebhookConfiguration {name}"
                + (f" and {len(found)} labelled {TAG_LABEL}={tag}" if found else "")
            )
        return found[0]

    def move_tag(self, tag: str, revision: str) -> TagInfo:
        """``istioctl tag set <tag> --revision <revision> --overwrite``, then read back:
        the tag webhook, the tag Service when there is one (Istio 1.28 and later render it;
        its absence is normal before), and for ``default`` the non-revisioned injector
        deactivated and ``istiod-default-validator`` pointed at the revision."""
        canonical_labels, canonical = self._canonical_injector(revision)
        warnings: list[str] = []
        written = self.retry(
            f"move tag {tag} to {revision}",
            lambda: self._move_tag_webhook(tag, revision, canonical_labels, canonical),
        )
        warnings += ownership_warnings("MutatingWebhookConfiguration", written)
        service = self.retry(
            f"move tag Service of {tag}", lambda: self._move_tag_service(tag, revision)
        )
        if service is not None:
            warnings += ownership_warnings("Service", service)
        if tag == "default":
            deactivated = self.retry(
                "deactivate the non-revisioned injector", self._deactivate_default_injector
            )
            if deactivated is not None:
                warnings += ownership_warnings("MutatingWebhookConfiguration", deactivated)
                warnings.append(
                    f"{meta_of(deactivated).get('name')} (istio.io/rev=default) was deactivated "
                    "as istioctl does (its selectors never match); pods labelled for it are "
                    "now injected by the tag"
                )
            validator = self.retry(
                f"move {DEFAULT_VALIDATOR}", lambda: self._move_validator(revision, canonical)
            )
            if validator is not None:
                warnings += ownership_warnings("ValidatingWebhookConfiguration", validator)
        self._verify_tag(tag, revision, canonical, service is not None)
        labels = labels_of(written)
        return TagInfo(
            name=tag,
            revision=revision,
            managed_by=labels.get(MANAGED_BY),
            warnings=tuple(warnings),
            webhook=meta_of(written).get("name"),
            service=meta_of(service).get("name") if service is not None else None,
        )

    def _move_tag_webhook(
        self,
        tag: str,
        revision: str,
        canonical_labels: dict[str, str],
        canonical: dict[str, Any],
    ) -> dict[str, Any]:
        mwc = self._read_tag_webhook(tag)
        meta = mwc["metadata"]
        # generate.go: the canonical webhook's labels without "app" (the tag keeps its own
        # app: sidecar-injector) and, istioctl's tags being user-managed, without the
        # installer's operator.istio.io labels; labels already there stay (server-side apply
        # leaves fields of other managers alone)
        meta["labels"] = {
            **labels_of(mwc),
            **{
                k: v for k, v in canonical_labels.items() if k != "app" and OPERATOR_LABELS not in k
            },
            REVISION_LABEL: revision,
            TAG_LABEL: tag,
        }
        for webhook in mwc.get("webhooks") or []:
            webhook["clientConfig"] = injector_client_config(
                webhook.get("clientConfig") or {}, canonical, self.istio_namespace
            )
            if canonical.get("reinvocationPolicy"):
                webhook["reinvocationPolicy"] = canonical["reinvocationPolicy"]
        return self._json(self.admission.replace_mutating_webhook_configuration, meta["name"], mwc)

    def _move_tag_service(self, tag: str, revision: str) -> dict[str, Any] | None:
        """revision-tags-svc.yaml: labels ``istio.io/rev``/``istio.io/tag`` and a selector
        on the revision's istiod, as the revision's own Service ``istiod-<rev>`` has them."""
        name = f"istiod-revision-tag-{tag}"
        try:
            service = self._json(self.core.read_namespaced_service, name, self.istio_namespace)
        except ApiException as error:
            if error.status == 404:
                return None  # Istio before 1.28 renders no tag Service
            raise
        canonical = (
            self._json(
                self.core.list_namespaced_service,
                self.istio_namespace,
                label_selector=f"{REVISION_LABEL}={revision},!{TAG_LABEL},app=istiod",
            ).get("items")
            or []
        )
        own = next(
            (svc for svc in canonical if meta_of(svc).get("name") == f"istiod-{revision}"),
            canonical[0] if canonical else None,
        )
        labels = {**labels_of(service)}
        if own is not None:
            labels.update({k: v for k, v in labels_of(own).items() if OPERATOR_LABELS not in k})
            selector = dict((own.get("spec") or {}).get("selector") or {})
        elif revision == "default":
            selector = {"app": "istiod", "istio": "pilot"}
        else:
            selector = {"app": "istiod", REVISION_LABEL: revision}
        labels[REVISION_LABEL] = revision
        labels[TAG_LABEL] = tag
        service["metadata"]["labels"] = labels
        service.setdefault("spec", {})["selector"] = selector
        return self._json(self.core.replace_namespaced_service, name, self.istio_namespace, service)

    def _deactivate_default_injector(self) -> dict[str, Any] | None:
        """util.go DeactivateIstioInjectionWebhook: the non-revisioned injector
        (istio.io/rev=default, no tag) stays but never matches again."""
        found = (
            self._json(
                self.admission.list_mutating_webhook_configuration,
                label_selector=f"{REVISION_LABEL}=default,!{TAG_LABEL}",
            ).get("items")
            or []
        )
        if not found:
            return None
        if len(found) > 1:
            raise ClusterError(
                "expected a single webhook for the default revision, found "
                + ", ".join(sorted(meta_of(m).get("name", "") for m in found))
            )
        mwc = found[0]
        webhooks = mwc.get("webhooks") or []
        if all(
            w.get("namespaceSelector") == NEVER_MATCH and w.get("objectSelector") == NEVER_MATCH
            for w in webhooks
        ):
            return None  # already deactivated (a resumed or repeated move)
        for webhook in webhooks:
            webhook["namespaceSelector"] = json.loads(json.dumps(NEVER_MATCH))
            webhook["objectSelector"] = json.loads(json.dumps(NEVER_MATCH))
        return self._json(
            self.admission.replace_mutating_webhook_configuration, meta_of(mwc)["name"], mwc
        )

    def _validator(self) -> dict[str, Any] | None:
        try:
            return self._get(
                f"read {DEFAULT_VALIDATOR}",
                self.admission.read_validating_webhook_configuration,
                DEFAULT_VALIDATOR,
            )
        except ClusterNotFoundError:
            return None

    def _move_validator(self, revision: str, canonical: dict[str, Any]) -> dict[str, Any] | None:
        """generate.go fixWhConfig: the injector's endpoint with the path ``/validate``
        (a URL's path replaced whole), its CA bundle, label ``istio.io/rev``; the failure
        policy istiod manages is left as it is."""
        try:
            vwc = self._json(
                self.admission.read_validating_webhook_configuration, DEFAULT_VALIDATOR
            )
        except ApiException as error:
            if error.status == 404:
                log.warning(f"{DEFAULT_VALIDATOR} not found; only the tag webhook moved")
                return None
            raise
        vwc["metadata"].setdefault("labels", {})[REVISION_LABEL] = revision
        source = canonical.get("clientConfig") or {}
        for webhook in vwc.get("webhooks") or []:
            current = webhook.get("clientConfig") or {}
            config: dict[str, Any] = {}
            if source.get("url"):
                config["url"] = urlunsplit(urlsplit(source["url"])._replace(path="/validate"))
            else:
                service = source.get("service") or {}
                port = (current.get("service") or {}).get("port")  # the charts render none
                config["service"] = {
                    "name": service.get("name"),
                    "namespace": service.get("namespace") or self.istio_namespace,
                    "path": "/validate",
                    **({"port": port} if port else {}),
                }
            ca = source.get("caBundle") or current.get("caBundle")
            if ca:
                config["caBundle"] = ca
            webhook["clientConfig"] = config
        return self._json(
            self.admission.replace_validating_webhook_configuration, DEFAULT_VALIDATOR, vwc
        )

    def _verify_tag(
        self, tag: str, revision: str, canonical: dict[str, Any], has_service: bool
    ) -> None:
        """Read back: the tag webhook (and Service) now point at the revision."""
        back = self.retry(f"read back tag {tag}", lambda: self._read_tag_webhook(tag))
        target = endpoint_of(canonical.get("clientConfig") or {})
        wrong = [
            w.get("name")
            for w in back.get("webhooks") or []
            if endpoint_of(w.get("clientConfig") or {}) != target
        ]
        problems = []
        if labels_of(back).get(REVISION_LABEL) != revision or wrong:
            problems.append(
                f"webhook label {labels_of(back).get(REVISION_LABEL)}, webhooks not "
                f"rewritten: {wrong}"
            )
        if has_service:
            service = self._get(
                f"read back tag Service of {tag}",
                self.core.read_namespaced_service,
                f"istiod-revision-tag-{tag}",
                self.istio_namespace,
            )
            if labels_of(service).get(REVISION_LABEL) != revision:
                problems.append(f"Service label {labels_of(service).get(REVISION_LABEL)}")
        if problems:
            raise ClusterError(f"tag {tag} did not move to {revision}: " + "; ".join(problems))
