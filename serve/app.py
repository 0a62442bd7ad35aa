"""The FastAPI application: assembled here, model loaded in the lifespan (never at import)."""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from stancelens import __version__
from stancelens.model.loading import load_predictor
from stancelens.serve import errors
from stancelens.serve.actor_sets import ActorSets
from stancelens.serve.batcher import MicroBatcher
from stancelens.serve.deps import ServiceState
from stancelens.serve.observability import Metrics, RequestMiddleware
from stancelens.serve.routes import analyze, health, standard
from stancelens.serve.routes import evaluate as evaluate_route
from stancelens.serve.settings import Settings

log = logging.getLogger("stancelens.serve")
_STEP = re.compile(r"step (\d+)/(\d+)")


def training_progress(log_path: str | None) -> dict:
    """What the training beside the service has said last: {status, step, total, last, log}."""
    progress: dict = {"status": "training", "log": log_path}
    if not log_path or not Path(log_path).is_file():
        return progress
    with Path(log_path).open("rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 16_384))
        lines = [line.strip() for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()]
    steps = [m for line in lines for m in [_STEP.search(line)] if m]
    if steps:
        progress.update(step=int(steps[-1].group(1)), total=int(steps[-1].group(2)))
    if lines:
        progress["last"] = lines[-1][-300:]
        if lines[-1].startswith("error:"):
            progress["status"] = "failed"
    return progress
STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None, predictor=None, training=None) -> FastAPI:
    """Build the app. `predictor` injects a ready Predictor (tests); otherwise settings.model is loaded.
    `training` is the process training `settings.pending_model` beside the service, when there is one."""
    settings = settings or Settings.from_env()
    metrics = Metrics()
    state = ServiceState(settings=settings, actor_sets=ActorSets(settings.actor_sets, settings.actors_mode))

    def start_batcher(loaded) -> MicroBatcher:
        batcher = MicroBatcher(loaded, settings.max_batch_documents, settings.max_wait_ms, settings.queue_size,
                               settings.micro_batching, on_batch=metrics.batch_documents.observe)
        batcher.start()
        return batcher

    def load_model(spec: str):
        return load_predictor(spec, fast=settings.fast, backend=settings.fast_backend if settings.fast else None)

    async def switch_to(loaded) -> None:
        """Swap predictor and batcher in one step of the event loop (no request sees half of it); the old
        batcher finishes what it had queued with the old model, so every answer names the model that made it."""
        old, state.batcher, state.predictor = state.batcher, start_batcher(loaded), loaded
        state.actor_sets.forget()  # registries are rebuilt over the new model's on first use
        log.info("model ready", extra={"fields": {"model": loaded.info.model_dump()}})
        if old is not None:
            await old.stop()

    async def load() -> None:
        try:
            loaded = predictor if predictor is not None else await asyncio.to_thread(load_model, settings.model)
            await switch_to(loaded)
        except Exception as exc:  # keep serving health checks that say why
            state.error = str(exc)
            log.error("model failed to load", extra={"fields": {"error": str(exc)}})

    async def watch_pending(target: Path) -> None:
        """While the default model trains beside the service: report progress, and switch to the model as
        soon as its directory is complete (it appears in one rename, stancelens.json included)."""
        while True:
            state.training = training_progress(settings.training_log)
            ended = training.poll() if training is not None else None
            if ended is not None and not (target / "stancelens.json").is_file():
                # The training process is gone and left no model (a crash, a kill): say so and stop.
                state.training = {**state.training, "status": "failed",
                                  "error": f"the training process ended with code {ended} without saving a model"}
                log.error("training beside the service failed", extra={"fields": {"code": ended}})
                return
            if (target / "stancelens.json").is_file():
                try:
                    loaded = await asyncio.to_thread(load_model, str(target))
                except Exception as exc:
                    state.training = {**(state.training or {}), "status": "failed", "error": str(exc)}
                    log.error("trained model failed to load", extra={"fields": {"error": str(exc)}})
                    return
                await switch_to(loaded)
                state.training = None
                return
            await asyncio.sleep(settings.pending_poll_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loading = asyncio.create_task(load())
        app.state.loading = loading
        watcher = (asyncio.create_task(watch_pending(Path(settings.pending_model)))
                   if settings.pending_model else None)
        app.state.watcher = watcher
        yield
        for task in (loading, watcher):
            if task is not None and not task.done():
                task.cancel()
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
    body_routes: set[str] = set()  # filled below, once the routers are in
    app.add_middleware(RequestMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes,
                       api_key=settings.key, engine=lambda: state.engine, body_routes=body_routes)
    app.include_router(analyze.router)
    app.include_router(standard.router)
    app.include_router(health.router)
    app.include_router(evaluate_route.router)
    body_routes.update(r.path for router in (analyze.router, standard.router, evaluate_route.router)
                       for r in router.routes if isinstance(r, APIRoute) and "POST" in (r.methods or set()))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    return app
