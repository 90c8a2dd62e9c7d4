"""Adapters: Prometheus, Kubernetes, notifications, rule files, each behind a small Protocol."""
