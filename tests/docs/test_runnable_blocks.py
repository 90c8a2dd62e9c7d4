"""Every ``sh runnable`` block in README.md and docs/*.md runs, and ends as its fence says.

The blocks run against a real Prometheus holding a recorded night, the simulated mesh and
a ``serve`` per document (see ``tests/docs/lab.py`` for what a block may use). Documents
run in parallel, the blocks of one document in order. A broken command, a renamed flag or
a changed exit code fails the block that shows it, named by file and line.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import groupby

import pytest

from tests.docs.blocks import KNOWN_NEEDS, runnable_blocks
from tests.docs.lab import BlockResult, lab, run_document

BLOCKS = runnable_blocks()


@pytest.fixture(scope="module")
def results() -> dict[str, BlockResult]:
    with lab() as the_lab:
        documents = [list(group) for _, group in groupby(BLOCKS, key=lambda b: b.path)]
        with ThreadPoolExecutor(max_workers=len(documents)) as pool:
            done = list(pool.map(lambda blocks: run_document(the_lab, blocks), documents))
    return {result.block.where: result for results in done for result in results}


def test_docs_have_runnable_blocks() -> None:
    documents = {block.path.name for block in BLOCKS}
    assert {"README.md", "operator.md", "rules.md", "oncall.md"} <= documents, documents


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_fence_options_are_known(block) -> None:
    unknown = set(block.options) - {"exit", "needs"}
    assert not unknown, f"{block.where}: unknown fence option(s) {unknown}"
    assert block.needs <= KNOWN_NEEDS, f"{block.where}: unknown needs {block.needs - KNOWN_NEEDS}"
    assert block.options.get("exit", "0").isdigit(), f"{block.where}: exit must be a number"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_block_runs(block, results: dict[str, BlockResult]) -> None:
    result = results[block.where]
    if result.skipped:
        pytest.skip(f"{block.where}: {result.skipped}")
    assert result.code == block.expected_exit, (
        f"{block.where}: exit {result.code}, the doc says {block.expected_exit}\n"
        f"--- block\n{block.text}--- stdout\n{result.stdout[-3000:]}\n"
        f"--- stderr\n{result.stderr[-3000:]}"
    )
