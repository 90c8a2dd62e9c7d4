"""Allows ``python -m analyzer`` as a synonym of the ``canary-analyzer`` command."""

from analyzer.cli import run

run()
