"""Every relative link in README.md and docs/*.md points at a file that exists, and every
``#anchor`` at a heading of that file (GitHub's slug rules)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.blocks import DOCS, ROOT

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCED = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = _FENCED.sub("", path.read_text())
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            number = counts.get(base, 0)
            counts[base] = number + 1
            found.add(base if number == 0 else f"{base}-{number}")
    return found


def links(path: Path) -> list[str]:
    text = _CODE.sub("", _FENCED.sub("", path.read_text()))
    return _LINK.findall(text)


CASES = [(path, target) for path in DOCS for target in links(path)
         if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]  # fmt: skip


def test_docs_link_each_other() -> None:
    assert len(CASES) >= 10, "the guides should link each other"


@pytest.mark.parametrize(
    ("path", "target"), CASES, ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in CASES]
)
def test_relative_link_resolves(path: Path, target: str) -> None:
    file_part, _, anchor = target.partition("#")
    destination = (path.parent / file_part).resolve() if file_part else path
    assert destination.exists(), f"{path.relative_to(ROOT)}: link to missing {target}"
    if anchor and destination.suffix == ".md":
        assert anchor in anchors(destination), (
            f"{path.relative_to(ROOT)}: no heading for #{anchor} in "
            f"{destination.relative_to(ROOT)} (have: {sorted(anchors(destination))})"
        )
