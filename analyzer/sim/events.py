"""The API server's validation of a new Event, as kubernetes/kubernetes does it.

Why it exists: an Event the real API server refuses must be refused here too, or the
engine's Events look fine on the simulated mesh and never appear on a real cluster.
Modelled on pkg/apis/core/validation/events.go (ValidateEventCreate, legacyValidateEvent):

- every version (core/v1 too): an Event without ``eventTime`` must sit in its involved
  object's namespace, and one about a cluster-scoped object (involvedObject.namespace
  empty, e.g. a Namespace) in ``default`` (or no namespace); with ``eventTime`` an Event
  about a cluster-scoped object must be in ``default`` or ``kube-system``, and it needs
  ``reportingController`` (a qualified name), ``reportingInstance`` (≤128), ``action``
  (≤128), ``reason`` (≤128), a message of at most 1024 characters;
- events.k8s.io/v1 additionally: ``eventTime`` required, ``type`` Normal or Warning, and the
  deprecated core fields (firstTimestamp, lastTimestamp, count, source) unset.
Errors read as the API server's field errors (``<path>: Invalid value: "<v>": <detail>``,
``<path>: Required value``), aggregated into ``Event "<name>" is invalid: …`` (422).
"""

from __future__ import annotations

import json
import re
from typing import Any

_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LIMIT = 128
_NOTE_LIMIT = 1024


class FieldError:
    """One field error, worded like k8s.io/apimachinery/pkg/util/validation/field."""

    def __init__(self, path: str, kind: str, value: Any = None, detail: str = "") -> None:
        self.path, self.kind, self.value, self.detail = path, kind, value, detail

    def message(self) -> str:
        if self.kind == "Required":
            return "Required value" + (f": {self.detail}" if self.detail else "")
        return f"Invalid value: {json.dumps(self.value)}" + (
            f": {self.detail}" if self.detail else "")

    def __str__(self) -> str:
        return f"{self.path}: {self.message()}"

    def cause(self) -> dict[str, str]:
        reason = "FieldValueRequired" if self.kind == "Required" else "FieldValueInvalid"
        return {"reason": reason, "message": self.message(), "field": self.path}


def _qualified_name(value: str) -> bool:
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_QUALIFIED_NAME.match(name))


def _legacy(event: dict[str, Any], namespace: str) -> list[FieldError]:
    """legacyValidateEvent, on the core/v1 shape of the Event."""
    errors: list[FieldError] = []
    involved_ns = (event.get("involvedObject") or {}).get("namespace") or ""
    mismatch = FieldError("involvedObject.namespace", "Invalid", involved_ns,
                          "does not match event.namespace")
    if not event.get("eventTime"):
        if not involved_ns:
            if namespace not in ("", "default"):
                errors.append(mismatch)
        elif namespace != involved_ns:
            errors.append(mismatch)
        return errors
    if not involved_ns and namespace not in ("default", "kube-system"):
        errors.append(mismatch)
    controller = event.get("reportingComponent") or ""
    if not controller:
        errors.append(FieldError("reportingController", "Required"))
    elif not _qualified_name(controller):
        errors.append(FieldError("reportingController", "Invalid", controller,
                                 "must be a qualified name"))
    instance = event.get("reportingInstance") or ""
    if not instance:
        errors.append(FieldError("reportingInstance", "Required"))
    if len(instance) > _LIMIT:
        errors.append(FieldError("reportingInstance", "Invalid", "",
                                 f"can have at most {_LIMIT} characters"))
    for path, value in (("action", event.get("action") or ""),
                        ("reason", event.get("reason") or "")):
        if not value:
            errors.append(FieldError(path, "Required"))
        if len(value) > _LIMIT:
            errors.append(FieldError(path, "Invalid", "", f"can have at most {_LIMIT} characters"))
    if len(event.get("message") or "") > _NOTE_LIMIT:
        errors.append(FieldError("message", "Invalid", "",
                                 f"can have at most {_NOTE_LIMIT} characters"))
    return errors


def _strict(body: dict[str, Any]) -> list[FieldError]:
    """What ValidateEventCreate adds for events.k8s.io/v1, on the body as sent."""
    errors: list[FieldError] = []
    if not body.get("eventTime"):
        errors.append(FieldError("eventTime", "Required"))
    if body.get("type") not in ("Normal", "Warning"):
        errors.append(FieldError("type", "Invalid", "", f"has invalid value: {body.get('type')}"))
    for sent, path in (("deprecatedFirstTimestamp", "firstTimestamp"),
                       ("deprecatedLastTimestamp", "lastTimestamp"),
                       ("deprecatedCount", "count"), ("deprecatedSource", "source")):
        if body.get(sent):
            errors.append(FieldError(path, "Invalid", "", "needs to be unset"))
    return errors


def validate_event_create(event: dict[str, Any], namespace: str,
                          events_api_body: dict[str, Any] | None) -> list[FieldError]:
    """Field errors for creating ``event`` (core/v1 shape) in ``namespace``;
    ``events_api_body`` is the request body when it came through events.k8s.io/v1."""
    errors = _legacy(event, namespace)
    if events_api_body is not None:
        errors += _strict(events_api_body)
    return errors


def invalid_message(name: str, errors: list[FieldError]) -> str:
    """The Status message of a 422 (apimachinery errors.NewInvalid)."""
    if len(errors) == 1:
        return f'Event "{name}" is invalid: {errors[0]}'
    return f'Event "{name}" is invalid: [{", ".join(str(e) for e in errors)}]'
