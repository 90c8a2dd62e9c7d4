"""Subcommands of the ``canary-analyzer`` command line, one module each.

Every module exposes ``register(subparsers)``. Shared flag groups live in ``common``.
"""
