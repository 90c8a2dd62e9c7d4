"""Benchmarks of the product: verdict quality against peer judges, and query batching at scale.

Kept out of ``core``: the benchmark judges the judge, so the judge must never depend on it.
"""
