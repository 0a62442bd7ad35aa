"""Structured JSON logs with a request id, and Prometheus metrics (one registry per app)."""

from __future__ import annotations

import hmac
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from stancelens.serve.errors import error_body

log = logging.getLogger("stancelens.serve")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
                   "message": record.getMessage()}
        payload.update(getattr(record, "fields", {}))
        return json.dumps(payload)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("stancelens")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("stancelens_requests_total", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram("stancelens_request_seconds", "HTTP request latency", ["route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.batch_documents = Histogram("stancelens_batch_documents", "documents per model batch",
                                         registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64))
        self.queue_depth = Gauge("stancelens_queue_depth", "requests waiting for the model", registry=self.registry)
        self.ready = Gauge("stancelens_model_ready", "1 when the model is loaded", registry=self.registry)


class BodyTooLarge(HTTPException):
    """Raised while the body is read, once it passes the limit: FastAPI re-raises HTTP exceptions from
    body reading, so the request ends with 413 after at most the limit was read, chunked or not."""

    def __init__(self, limit: int):
        super().__init__(413, f"expected a request body of at most {limit} bytes, found more; split the documents "
                              "over several requests")


class RequestMiddleware:
    """Request id, body-size guard (Content-Length and chunked bodies alike), an early 401 for /v1 requests
    without the API key (before any body is read), bounded metrics and one JSON log line per HTTP request,
    as a plain ASGI middleware: Starlette's `@app.middleware("http")` (BaseHTTPMiddleware) streams every
    response through an extra task and memory channel, which on this 2-core machine costs the model CPU."""

    def __init__(self, app, metrics: Metrics, max_body_bytes: int, api_key: str | None = None,
                 engine: Callable[[], str] | None = None, body_routes: set[str] | None = None):
        self.app, self.metrics, self.max_body_bytes, self.api_key = app, metrics, max_body_bytes, api_key
        self.engine = engine or (lambda: "none")
        self.body_routes = body_routes if body_routes is not None else set()  # POST routes under /v1

    def _authorized(self, headers: dict) -> bool:
        if not self.api_key:
            return True
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), self.api_key.encode())

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        started = time.perf_counter()
        status = 500

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Every response names the engine that answers now (the rules while a model trains).
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode("latin-1")),
                                                  (b"x-stancelens-engine", self.engine().encode("latin-1"))]}
            await send(message)

        length = headers.get(b"content-length", b"").decode("latin-1")
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        path = scope.get("path", "")
        try:
            if scope.get("method") == "POST" and path in self.body_routes and not self._authorized(headers):
                # The routes answer 401 too; this one comes before a byte of the body is read (other
                # methods and paths get the router's 405/404 or the route's own 401).
                response = JSONResponse(error_body(
                    "unauthorized", "expected an 'Authorization: Bearer <key>' header with the API key, found "
                    "none or another; send the API key", "authorization"), status_code=401,
                    headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send_with_id)
            elif length.isdigit() and int(length) > self.max_body_bytes:
                response = JSONResponse(error_body(
                    "payload_too_large", f"expected a request body of at most {self.max_body_bytes} bytes, found "
                    f"{length}; split the documents over several requests", None), status_code=413)
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        finally:
            route = scope.get("route")
            # Only routes the app defines become label values: a scan of made-up paths adds no series.
            name = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(name, str(status)).inc()
            self.metrics.latency.labels(name).observe(elapsed)
            log.info("request", extra={"fields": {"request_id": request_id, "method": scope.get("method"),
                                                  "path": path, "status": status, "ms": round(elapsed * 1000, 2)}})
