"""An idle ``serve`` carries no report or page code: what only reports and pages need
(matplotlib, jinja2 templates, pandas) and the judge's statistics (scipy) load when first
used, not when the command and the service are imported.

Why: the service sits idle most of the day; ``bench memory`` measures its resident memory.
This checks the behaviour behind the figure — which modules an import brings in — in a
fresh interpreter (``sys.modules`` of this test process has everything loaded already).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("matplotlib", "jinja2", "pandas", "scipy")


def loaded_after_import(module: str) -> dict[str, bool]:
    """Which of ``HEAVY`` a fresh interpreter has loaded after ``import module``."""
    code = (
        f"import json, sys, {module}\n"
        f"print(json.dumps({{name: name in sys.modules for name in {HEAVY!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("module", ["analyzer.commands._serve", "analyzer.service.service"])
def test_serving_imports_no_report_page_or_statistics_code(module: str) -> None:
    assert loaded_after_import(module) == dict.fromkeys(HEAVY, False)


def test_the_report_writer_still_brings_its_templates() -> None:
    """The counter-check: the report module does load jinja2 (so the test above can fail)."""
    assert loaded_after_import("analyzer.views.reports")["jinja2"] is True
