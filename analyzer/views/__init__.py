"""Presentation: renders typed data for people — reports, charts, the status page, the
terminal, verdict text and the HTTP API. Views import no adapters."""
