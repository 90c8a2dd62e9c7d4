"""Where a field sits in a YAML file, so validation errors can say ``file:line``.

Rule files and scenario files are parsed with ruamel.yaml's round-trip loader, which keeps
line numbers; pydantic reports errors as a path of keys. This maps one to the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq


def line_of(node: Any, path: Sequence[Any], fallback: int | None = None) -> int | None:
    """1-based line of the deepest key of ``path`` that exists in the parsed YAML, else
    ``fallback``."""
    line = fallback
    for key in path:
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line = node.lc.item(key)[0] + 1
            node = node[key]
        else:
            break
    return line
