"""The service's HTTP interface (FastAPI): health, metrics, status, and the control verbs.

Read-only endpoints are open: ``/healthz``, ``/readyz``, ``/metrics``, ``/api/status``.
Control endpoints (``/api/pause``, ``/api/resume``, ``/api/approve``, ``/api/abort``,
``/api/upgrade``, ``/api/approve-prune``) need ``Authorization: Bearer <token>``; without the right token they
answer 401 and change nothing. With no token configured they refuse every request.
The leader answers 200 when it has done the verb; a standby answers 202 with
``{"message", "queued": true, "id"}``: it queued the verb for the leader, who applies it on
its next pass (``service.inbox``). The verbs' vocabulary (request body, answers, refusals)
is the service's (``service.control``). 409 is a verb that makes no sense now, or a standby
that could not queue it. Control requests may say who sent them and why
(``X-Canary-Actor``, ``X-Canary-Reason``, as ``canary-analyzer pause --reason …`` does):
each verb is logged with both and carried into the service (a ``Requester``: the verb's
timeline note, the alerts it leads to, a standby's queued entry name them), and the answer
repeats them (``requested_by``, ``reason``).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from analyzer.errors import BadInputError
from analyzer.service.control import (
    ControlAnswer,
    ControlRefusedError,
    QueuedForLeader,
    Requester,
    ServiceControl,
    UpgradeRequestBody,
)
from analyzer.service.self_metrics import SelfMetrics

log = logging.getLogger("canary_analyzer.http")


class TokenCheck:
    """Compares bearer tokens in constant time; re-reads the file when it changes (rotation)."""

    def __init__(self, token_file: Path | None):
        self.token_file = token_file
        self._token: str | None = None
        self._mtime: float | None = None
        self._lock = threading.Lock()
        if token_file is not None:
            self._load()
            if not self._token:
                raise BadInputError(f"token file {token_file} is empty")

    def _load(self) -> None:
        assert self.token_file is not None
        try:
            stat = self.token_file.stat()
            if stat.st_mtime != self._mtime:
                self._token = self.token_file.read_text().strip()
                self._mtime = stat.st_mtime
        except OSError as error:
            if self._token is None:
                raise BadInputError(
                    f"cannot read token file {self.token_file}: {error.strerror}"
                ) from None

    def allows(self, header: str | None) -> bool:
        if self.token_file is None or not header:
            return False
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return False
        with self._lock:
            self._load()
            token = self._token or ""
        return bool(token) and hmac.compare_digest(presented.strip().encode(), token.encode())


def _header(request: Request, name: str) -> str:
    """A header's value on one line, bounded."""
    return " ".join((request.headers.get(name) or "").split())[:200]


def _who_and_why(request: Request, user_header: str | None = None) -> dict[str, str]:
    """The sender and reason a control request names (headers; bounded, one line each).

    With ``user_header`` (``service.user_header``), the user an authenticating proxy in
    front of the service put there (kube-rbac-proxy's ``--auth-header-fields-enabled``
    sets ``x-remote-user``) is the sender, ``authenticated_by`` names the header, and a
    different name the caller claimed (``X-Canary-Actor``) is kept as ``claimed_by``.
    Without the header the claim stands, as without the setting."""
    found = {}
    for header, key in (("x-canary-actor", "requested_by"), ("x-canary-reason", "reason")):
        value = _header(request, header)
        if value:
            found[key] = value
    verified = _header(request, user_header) if user_header else ""
    if verified:
        claimed = found.get("requested_by")
        found["requested_by"] = verified
        found["authenticated_by"] = user_header or ""
        if claimed and claimed != verified:
            found["claimed_by"] = claimed
    return found


def create_app(
    control: ServiceControl,
    metrics: SelfMetrics,
    tokens: TokenCheck,
    extra_routes=None,
    status_extra: dict[str, Any] | None = None,
    user_header: str | None = None,
) -> FastAPI:
    """The FastAPI application; ``extra_routes(app)`` may add pages (reports, status page);
    ``status_extra`` is merged into ``/api/status`` (e.g. the cluster the service acts on);
    ``user_header``: the header an authenticating proxy names the caller in."""
    app = FastAPI(title="canary-analyzer", version="1", docs_url=None, redoc_url=None)

    def require_token(request: Request) -> None:
        if not tokens.allows(request.headers.get("authorization")):
            log.warning(
                "control request refused: missing or wrong bearer token",
                extra={
                    "fields": {
                        "path": request.url.path,
                        "client": request.client.host if request.client else "",
                    }
                },
            )
            raise HTTPException(
                status_code=401,
                detail="a valid 'Authorization: Bearer <token>' header is required",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.exception_handler(ControlRefusedError)
    async def refused(_request: Request, error: ControlRefusedError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(error)})

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        ready, reason = control.readiness()
        return JSONResponse(
            status_code=200 if ready else 503, content={"ready": ready, "reason": reason}
        )

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return {**control.status(), **(status_extra or {})}

    authorized = [Depends(require_token)]

    def answer(
        verb: str, request: Request, act: Callable[[Requester], ControlAnswer]
    ) -> JSONResponse:
        who = _who_and_why(request, user_header)
        log.warning(
            "control verb",
            extra={"fields": {"verb": verb, **who,
                              "client": request.client.host if request.client else ""}},
        )  # fmt: skip
        result = act(Requester.from_json(who))
        if isinstance(result, QueuedForLeader):
            return JSONResponse(status_code=202, content={**result.to_json(), **who})
        content = jsonable_encoder(result)
        if isinstance(content, dict):
            content = {**content, **who}
        return JSONResponse(status_code=200, content=content)

    @app.post("/api/pause", dependencies=authorized)
    def pause(request: Request) -> JSONResponse:
        return answer("pause", request, control.pause)

    @app.post("/api/resume", dependencies=authorized)
    def resume(request: Request) -> JSONResponse:
        return answer("resume", request, control.resume)

    @app.post("/api/approve", dependencies=authorized)
    def approve(request: Request) -> JSONResponse:
        return answer("approve", request, control.approve)

    @app.post("/api/abort", dependencies=authorized)
    def abort(request: Request) -> JSONResponse:
        return answer("abort", request, control.abort)

    @app.post("/api/upgrade", dependencies=authorized)
    def upgrade(body: UpgradeRequestBody, request: Request) -> JSONResponse:
        return answer("upgrade", request, lambda who: control.request_upgrade(body, who))

    @app.post("/api/approve-prune", dependencies=authorized)
    def approve_prune(request: Request) -> JSONResponse:
        return answer("approve-prune", request, control.approve_prune)

    @app.post("/api/rollback", dependencies=authorized)
    def rollback(request: Request) -> JSONResponse:
        return answer("rollback", request, control.rollback)

    if extra_routes is not None:
        extra_routes(app)
    return app


class HttpServer:
    """Runs the app with uvicorn in a background thread; ``stop()`` shuts it down."""

    def __init__(self, app: FastAPI, host: str, port: int):
        self.config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="http", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; raise ``BadInputError`` when the address cannot be bound."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)  # waiting for uvicorn to bind, bounded by the deadline
        if not self.server.started:
            self.stop()
            raise BadInputError(f"cannot listen on {self.config.host}:{self.config.port}")

    @property
    def bound_port(self) -> int:
        servers = getattr(self.server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return sock.getsockname()[1]
        return self.config.port

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port); port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise BadInputError(f"--listen must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)
