"""The runtime: applies core's decisions through adapters; the service; reports."""
