"""The three PATCH flavours of the Kubernetes API: strategic merge, JSON merge, JSON patch.

``kubectl rollout restart`` and the official client send strategic-merge patches; the
patch semantics for built-in types come from the ``patchStrategy``/``patchMergeKey`` tags of
k8s.io/api (lists of containers merge by ``name``, conditions by ``type``, …; lists without
a strategy are replaced). JSON merge patch is RFC 7386, JSON patch RFC 6902.
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A patch that cannot be applied (answered with 422 or 400 by the API server)."""


#: Field name → merge key for lists that merge element-wise (k8s.io/api patchMergeKey).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "conditions": "type",
    "webhooks": "name",
    "ownerReferences": "uid",
}
#: Primitive lists with strategy "merge" (set union).
_MERGED_PRIMITIVE_LISTS = {"finalizers"}


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        for item in items:
            if isinstance(item, dict):
                return "containerPort" if "containerPort" in item else "port"
        return "containerPort"
    return _MERGE_KEYS.get(field)


def strategic_merge(original: Any, patch: Any) -> Any:
    """Apply a strategic-merge patch to ``original``; returns a new object."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _merge_map(copy.deepcopy(original) if isinstance(original, dict) else {}, patch)


def _merge_map(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {key: copy.deepcopy(value) for key, value in patch.items() if key != "$patch"}
    if directive is not None:
        raise PatchError(f"unknown $patch directive {directive!r}")
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(original.get(field), list):
                original[field] = [item for item in original[field] if item not in value]
            continue
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict):
            current = original.get(key)
            merged = _merge_map(current if isinstance(current, dict) else {}, value)
            if merged is None:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list):
            original[key] = _merge_list(key, original.get(key), value)
        else:
            original[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        for key in list(original):
            if key not in retain:
                del original[key]
    return original


def _merge_list(field: str, original: Any, patch: list[Any]) -> list[Any]:
    original_items = list(original) if isinstance(original, list) else []
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [
            copy.deepcopy(item)
            for item in patch
            if not (isinstance(item, dict) and item.get("$patch") == "replace")
        ]
    if field in _MERGED_PRIMITIVE_LISTS:
        merged = list(original_items)
        merged.extend(item for item in patch if item not in merged)
        return merged
    key = _merge_key(field, original_items + patch)
    if key is None or not all(isinstance(item, dict) for item in patch):
        return copy.deepcopy(patch)
    result = [copy.deepcopy(item) for item in original_items]
    for item in patch:
        if key not in item:
            raise PatchError(f"list {field!r} element without merge key {key!r}")
        index = next(
            (
                i
                for i, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            merged = _merge_map(result[index], item)
            if merged is None:
                result.pop(index)
            else:
                result[index] = merged
    return result


def json_merge(original: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer must start with '/': {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _resolve_parent(document: Any, parts: list[str]) -> tuple[Any, str]:
    node = document
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"path segment {part!r} does not exist")
    return node, parts[-1]


def _get(document: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return document
    parent, last = _resolve_parent(document, parts)
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError(f"path {path!r} does not exist")


def _remove(document: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent, last = _resolve_parent(document, parts)
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError(f"cannot remove {path!r}: it does not exist")


def _add(document: Any, path: str, value: Any, replace: bool = False) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent, last = _resolve_parent(document, parts)
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"cannot replace {path!r}: it does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise PatchError(f"index {last!r} out of range in {path!r}")
    else:
        raise PatchError(f"cannot add to {path!r}: parent is not a container")
    return document


def json_patch(original: Any, operations: Any) -> Any:
    """RFC 6902: add, remove, replace, move, copy, test, applied in order."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a JSON array of operations")
    document = copy.deepcopy(original)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"malformed JSON patch operation {operation!r}")
        op, path = operation["op"], operation["path"]
        if op == "add":
            document = _add(document, path, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            _remove(document, path)
        elif op == "replace":
            document = _add(document, path, copy.deepcopy(operation.get("value")), replace=True)
        elif op == "move":
            value = _remove(document, operation["from"])
            document = _add(document, path, value)
        elif op == "copy":
            document = _add(document, path, copy.deepcopy(_get(document, operation["from"])))
        elif op == "test":
            if _get(document, path) != operation.get("value"):
                raise PatchError(f"test operation failed at {path!r}")
        else:
            raise PatchError(f"unknown JSON patch operation {op!r}")
    return document
