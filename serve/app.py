"""The FastAPI application: assembled here, model loaded in the lifespan (never at import)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from stancelens import __version__
from stancelens.serve import errors
from stancelens.serve.batcher import MicroBatcher
from stancelens.serve.deps import ServiceState
from stancelens.serve.observability import Metrics, RequestMiddleware
from stancelens.serve.routes import analyze, health, standard
from stancelens.serve.routes import evaluate as evaluate_route
from stancelens.serve.settings import Settings

log = logging.getLogger("stancelens.serve")
STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None, predictor=None) -> FastAPI:
    """Build the app. `predictor` injects a ready Predictor (tests); otherwise settings.model is loaded."""
    settings = settings or Settings.from_env()
    metrics = Metrics()
    state = ServiceState(settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):

        async def load() -> None:
            try:
                loaded = predictor
                if loaded is None:
                    from stancelens.model.loading import load_predictor

                    loaded = await asyncio.to_thread(load_predictor, settings.model, fast=settings.fast,
                                                     backend=settings.fast_backend if settings.fast else None)
                batcher = MicroBatcher(loaded, settings.max_batch_documents, settings.max_wait_ms, settings.queue_size,
                                       settings.micro_batching, on_batch=metrics.batch_documents.observe)
                batcher.start()
                state.batcher = batcher
                state.predictor = loaded
                log.info("model ready", extra={"fields": {"model": loaded.info.model_dump()}})
            except Exception as exc:  # keep serving health checks that say why
                state.error = str(exc)
                log.error("model failed to load", extra={"fields": {"error": str(exc)}})

        loading = asyncio.create_task(load())
        app.state.loading = loading
        yield
        if not loading.done():
            loading.cancel()
        if state.batcher is not None:
            await state.batcher.stop()

    app = FastAPI(
        title="stancelens",
        version=__version__,
        description="Directed stance between actors and framing of actor mentions in news text.",
        lifespan=lifespan,
    )
    app.state.service = state
    app.state.metrics = metrics
    errors.install(app)
    app.add_middleware(RequestMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    app.include_router(analyze.router)
    app.include_router(standard.router)
    app.include_router(health.router)
    app.include_router(evaluate_route.router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    return app
