"""Test-wide configuration: the repository root on sys.path so ``tests.fixtures`` imports,
and the end-to-end tests scheduled first."""

import os

import pytest


def pytest_collection_modifyitems(config, items):
    """End-to-end tests first: each waits through real before/after windows for a minute or
    more, so under ``-n 4 --maxschedchunk 1`` they start together on every worker instead of
    queueing at the end on one (the fast tests fill the gaps)."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


@pytest.fixture(scope="session", autouse=True)
def restart_history_in_a_temp_dir(tmp_path_factory):
    """Commands run by tests (``upgrade`` in a subprocess too) append every restart to the
    history file (``service.history_file``); keep it in this run's temp dir, not beside the
    default reports directory."""
    path = tmp_path_factory.mktemp("history") / "restarts.jsonl"
    previous = os.environ.get("CANARY_SERVICE__HISTORY_FILE")
    os.environ["CANARY_SERVICE__HISTORY_FILE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("CANARY_SERVICE__HISTORY_FILE", None)
    else:
        os.environ["CANARY_SERVICE__HISTORY_FILE"] = previous
