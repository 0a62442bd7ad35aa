"""Dependencies shared by the routes: the loaded service state, auth, and rate limiting."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from stancelens.serve.errors import ApiError

if TYPE_CHECKING:
    from stancelens.model.predictor import Predictor
    from stancelens.serve.actor_sets import ActorSets
    from stancelens.serve.batcher import MicroBatcher
    from stancelens.serve.settings import Settings


@dataclass
class ServiceState:
    settings: Settings
    predictor: Predictor | None = None
    batcher: MicroBatcher | None = None
    error: str | None = None
    buckets: dict = field(default_factory=dict)
    training: dict | None = None  # progress of the model trained beside the service, while it trains
    actor_sets: ActorSets | None = None  # the sets of `serve --actors`, applied to whichever model serves

    @property
    def engine(self) -> str:
        """The classifier answering now: 'lexicon', 'tfidf' or 'transformer'."""
        name = type(self.predictor.engine).__name__ if self.predictor is not None else ""
        return {"LexiconEngine": "lexicon", "TfidfEngine": "tfidf", "TransformerEngine": "transformer"}.get(
            name, name.lower() or "none")


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


def ready_state(state: Annotated[ServiceState, Depends(get_state)]) -> ServiceState:
    if state.predictor is None or state.batcher is None:
        detail = f" ({state.error})" if state.error else ""
        raise ApiError(503, "not_ready", f"the model is still loading{detail}; retry shortly", headers={"Retry-After": "5"})
    if not state.batcher.alive:
        raise ApiError(503, "not_ready", "the model worker has stopped; restart the service",
                       headers={"Retry-After": "5"})
    return state


def authorize(request: Request, state: Annotated[ServiceState, Depends(get_state)]) -> str:
    """When STANCELENS_API_KEY is set, /v1 routes need `Authorization: Bearer <key>`."""
    key = state.settings.key
    if not key:
        return "anonymous"
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "expected an 'Authorization: Bearer <key>' header, found "
                       + ("none" if not header else "another scheme") + "; send the API key", "authorization",
                       headers={"WWW-Authenticate": "Bearer"})
    import hmac

    if not hmac.compare_digest(token.encode(), key.encode()):
        raise ApiError(401, "unauthorized", "the API key is not valid; check STANCELENS_API_KEY", "authorization",
                       headers={"WWW-Authenticate": "Bearer"})
    limit = state.settings.rate_limit_per_minute
    if limit:
        now = time.monotonic()
        window = [t for t in state.buckets.get(token, []) if now - t < 60.0]
        if len(window) >= limit:
            retry = max(1, int(60 - (now - window[0])) + 1)
            raise ApiError(429, "rate_limited", f"expected at most {limit} requests a minute for this key, found "
                           f"{len(window) + 1}; retry in {retry} s", headers={"Retry-After": str(retry)})
        window.append(now)
        state.buckets[token] = window
    return token


Ready = Annotated[ServiceState, Depends(ready_state)]
Caller = Annotated[str, Depends(authorize)]
