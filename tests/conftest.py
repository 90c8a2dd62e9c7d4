"""Test-wide configuration: the repository root on sys.path so ``tests.fixtures`` imports,
and the end-to-end tests scheduled first."""


def pytest_collection_modifyitems(config, items):
    """End-to-end tests first: each waits through real before/after windows for a minute or
    more, so under ``-n 4 --maxschedchunk 1`` they start together on every worker instead of
    queueing at the end on one (the fast tests fill the gaps)."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)
