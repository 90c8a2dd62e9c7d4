"""The service's human pages: the live status page at ``/`` and the saved reports.

``register_status_routes(app, get_status, reports_dir)`` plugs into ``create_app``'s
``extra_routes`` hook and adds:

- ``GET /`` — current plan, progress per namespace, the upgrade's timeline, last verdicts,
  links to reports. A small inline script polls ``/status.json`` every few seconds and
  updates the page in place (no reload); it builds the DOM with ``textContent`` only, so
  nothing from the status can inject markup. The page also renders from the status
  embedded at load time.
- ``GET /status.json`` — what the page shows: the ``/api/status`` answer with its
  ``timeline`` items formatted by ``reports.timeline_item`` (times in UTC, as in the
  upgrade report), oldest first like the report.
- ``GET /reports/`` — the saved HTML reports, newest first.
- ``GET /reports/{name}`` — one report. Only plain ``*.html`` names directly inside
  ``reports_dir`` are served (no path traversal, no hidden files, no symlinks out), with a
  Content-Security-Policy that forbids scripts and network access.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response


def _reports():  # type: ignore[no-untyped-def]
    """The report module (jinja templates): loaded when a page is first drawn, so an idle
    service does not carry it."""
    from analyzer.views import reports

    return reports


#: How often the status page asks ``/api/status`` (milliseconds).
POLL_INTERVAL_MS = 3000

_REPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.html$")
_REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def list_reports(reports_dir: Path, url_prefix: str = "/reports/") -> list[dict[str, Any]]:
    """Reports saved in ``reports_dir``, newest first: ``[{"name", "url", "modified"}]``.

    The service may put this list in its ``/api/status`` answer under ``reports``."""
    try:
        candidates = list(Path(reports_dir).iterdir())
    except OSError:
        return []
    found = []
    for path in candidates:
        if _REPORT_NAME.match(path.name) and path.is_file() and not path.is_symlink():
            modified = path.stat().st_mtime
            found.append((modified, path.name))
    found.sort(reverse=True)
    return [
        {
            "name": name,
            "url": f"{url_prefix}{name}",
            "modified": datetime.fromtimestamp(modified, UTC).isoformat(timespec="seconds"),
        }
        for modified, name in found
    ]


def _report_path(reports_dir: Path, name: str) -> Path | None:
    if not _REPORT_NAME.match(name):
        return None
    root = Path(reports_dir).resolve()
    candidate = root / name
    if candidate.is_symlink() or not candidate.is_file():
        return None
    if candidate.resolve().parent != root:
        return None
    return candidate


def page_status(status: Any) -> Any:
    """The status as the page shows it: ``status`` (the ``/api/status`` answer) with each
    ``timeline`` item formatted as in the upgrade report (``reports.timeline_item``), in
    the same order (oldest first). Anything but a dict is returned as is."""
    if not isinstance(status, Mapping):
        return status
    items = status.get("timeline")
    items = items if isinstance(items, list | tuple) else ()
    return {
        **status,
        "timeline": [_reports().timeline_item(item) for item in items if isinstance(item, Mapping)],
    }


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` break-out)."""
    text = json.dumps(value, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def register_status_routes(
    app: FastAPI,
    get_status: Callable[[], dict],
    reports_dir: Path,
    *,
    poll_seconds: float = POLL_INTERVAL_MS / 1000,
) -> None:
    """Add ``GET /``, ``GET /status.json``, ``GET /reports/`` and ``GET /reports/{name}``
    to ``app``.

    ``get_status`` returns the same dict as ``/api/status`` (used for the first paint and
    for ``/status.json``, which the page polls every ``poll_seconds``). ``reports_dir``
    holds the ``*.html`` reports."""
    reports_dir = Path(reports_dir)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def status_page() -> HTMLResponse:
        try:
            status: Any = page_status(get_status())
        except Exception:  # the page still loads and keeps polling
            status = None
        nonce = secrets.token_urlsafe(16)
        html = _reports().render_template(
            "status.html.j2",
            title="canary-analyzer status",
            initial_status=_script_json(status),
            initial_reports=_script_json(list_reports(reports_dir)),
            poll_ms=max(100, int(poll_seconds * 1000)),
            nonce=nonce,
            generated=None,
        )
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
            "connect-src 'self'; img-src data:"
        )
        return HTMLResponse(
            html,
            headers={
                "Content-Security-Policy": csp,
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    @app.get("/status.json", include_in_schema=False)
    def status_json() -> JSONResponse:
        try:
            status = page_status(get_status())
        except Exception:  # the page says it cannot reach the service and retries
            return JSONResponse(
                {"detail": "status not available"},
                status_code=503,
                headers={"Cache-Control": "no-store"},
            )
        return JSONResponse(jsonable_encoder(status), headers={"Cache-Control": "no-store"})

    @app.get("/reports", include_in_schema=False)
    @app.get("/reports/", response_class=HTMLResponse, include_in_schema=False)
    def reports_index() -> HTMLResponse:
        html = _reports().render_template(
            "reports_index.html.j2",
            title="canary-analyzer reports",
            reports=list_reports(reports_dir),
            generated=None,
        )
        return HTMLResponse(
            html, headers={"Content-Security-Policy": _REPORT_CSP, "Cache-Control": "no-store"}
        )

    @app.get("/reports/{name}", include_in_schema=False)
    def report(name: str) -> Response:
        path = _report_path(reports_dir, name)
        if path is None:
            raise HTTPException(status_code=404, detail="no such report")
        return Response(
            path.read_bytes(),
            media_type="text/html; charset=utf-8",
            headers={
                "Content-Security-Policy": _REPORT_CSP,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-cache",
            },
        )
