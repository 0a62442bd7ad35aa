"""Structured JSON logs with a request id, and Prometheus metrics (one registry per app)."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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


def request_middleware(metrics: Metrics, max_body_bytes: int):
    from starlette.responses import JSONResponse

    from stancelens.serve.errors import error_body

    async def middleware(request, call_next):
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body_bytes:
            response = JSONResponse(error_body(
                "payload_too_large", f"expected a request body of at most {max_body_bytes} bytes, found {length}; "
                "split the documents over several requests", None), status_code=413)
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", request.url.path if request.url.path.startswith("/v1") else "other")
        elapsed = time.perf_counter() - started
        metrics.requests.labels(name, str(response.status_code)).inc()
        metrics.latency.labels(name).observe(elapsed)
        response.headers["x-request-id"] = request_id
        log.info("request", extra={"fields": {"request_id": request_id, "method": request.method,
                                              "path": request.url.path, "status": response.status_code,
                                              "ms": round(elapsed * 1000, 2)}})
        return response

    return middleware
