"""Test-wide configuration: the repository root on sys.path so ``tests.fixtures`` imports."""
