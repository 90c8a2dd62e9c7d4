"""Fenced code blocks in the user docs, and which of them are runnable.

The convention (stated in a comment at the top of each doc): a fence whose info string is
``sh runnable`` is executed by ``tests/docs/test_runnable_blocks.py``; words after it say
what the block needs and how it must end::

    ```sh runnable                  exit code 0 expected
    ```sh runnable exit=1           exit code 1 expected (a regression found)
    ```sh runnable needs=service    needs a running ``serve`` ($CANARY_SERVICE__URL, $TOKEN_FILE)
    ```sh runnable needs=kubectl    uses kubectl (skipped, saying why, when it is not installed)

Blocks fenced plain ``sh`` are shown, not run (they need a real cluster or take too long).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
KNOWN_NEEDS = {"service", "kubectl", "sim"}


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its info string and its text."""

    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    text: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    @property
    def runnable(self) -> bool:
        words = self.info.split()
        return len(words) >= 2 and words[0] == "sh" and words[1] == "runnable"

    @property
    def expected_exit(self) -> int:
        return int(self.options.get("exit", "0"))

    @property
    def needs(self) -> set[str]:
        value = self.options.get("needs", "")
        return {n for n in value.split(",") if n}

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence = opening.group("fence")
        info = opening.group("info").strip()
        body: list[str] = []
        start = index + 1
        index += 1
        while index < len(lines):
            closing = re.match(r"^ {0,3}(`{3,}|~{3,})\s*$", lines[index])
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                break
            body.append(lines[index])
            index += 1
        options = dict(word.split("=", 1) for word in info.split()[2:] if "=" in word)
        blocks.append(Block(path, start, info, "\n".join(body) + "\n", options))
        index += 1
    return blocks


def runnable_blocks(paths=DOCS) -> list[Block]:
    return [block for path in paths for block in parse_blocks(path) if block.runnable]
