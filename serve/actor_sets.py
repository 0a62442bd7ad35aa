"""The actor sets a service offers: those it was started with (`serve --actors FILE`) and bounded inline
definitions sent with a request. Each becomes a `Predictor` that shares the loaded engine and differs only
in its registry, built once per model and set (inline sets: a small cache by content hash)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from stancelens.model.actor_set import (
    ActorSet,
    ActorSetError,
    actor_set_from_definitions,
    apply_actor_set,
    read_actor_set,
)
from stancelens.model.predictor import Predictor
from stancelens.model.registry import default_registry
from stancelens.serve.errors import ApiError

MODEL_SET = "model"  # the name of the model's own registry


class ActorSets:
    def __init__(self, paths: list[str], mode: str = "add", inline_cache: int = 32):
        """Read and check every file now (a broken file stops the service before it starts)."""
        self.mode = mode
        self.sets: dict[str, ActorSet] = {}
        for path in paths:
            actor_set = read_actor_set(Path(path), default_registry())
            apply_actor_set(default_registry(), actor_set, mode)
            if actor_set.name in self.sets or actor_set.name == MODEL_SET:
                raise ActorSetError(path, f"expected a set name not used yet, found {actor_set.name!r} again; give "
                                    "the file a `name:` of its own")
            self.sets[actor_set.name] = actor_set
        # Requests without `actor_set` use the first set the service was started with, else the model's own.
        self.default = next(iter(self.sets), MODEL_SET)
        self._built: dict[tuple[int, str], Predictor] = {}
        self._inline: OrderedDict[tuple[int, str, str], Predictor] = OrderedDict()
        self._inline_cache = inline_cache

    @property
    def names(self) -> list[str]:
        return [*self.sets, MODEL_SET]

    def forget(self) -> None:
        """Drop the predictors built for a model that is no longer served."""
        self._built.clear()
        self._inline.clear()

    def predictor(self, base: Predictor, name: str | None) -> tuple[str, Predictor]:
        name = name or self.default
        if name == MODEL_SET:
            return name, base
        if name not in self.sets:
            raise ApiError(422, "unknown_actor_set", f"expected an actor set in {self.names}, found {name!r}; "
                           "start the service with `--actors FILE` to offer another", "actor_set")
        key = (id(base), name)
        if key not in self._built:
            try:
                self._built[key] = base.with_registry(apply_actor_set(base.registry, self.sets[name], self.mode))
            except ActorSetError as exc:
                raise ApiError(422, "actor_set_unusable", f"the set {name!r} does not fit this model: {exc}",
                               "actor_set") from exc
        return name, self._built[key]

    def with_definitions(self, predictor: Predictor, name: str, definitions: list[dict]) -> Predictor:
        """The predictor of a named set plus a request's inline actors (added; same id redefines)."""
        try:
            inline = actor_set_from_definitions(definitions, predictor.registry)
        except ActorSetError as exc:
            raise ApiError(422, "bad_actor_definition", exc.message, exc.field or "actor_definitions") from exc
        key = (id(predictor), name, inline.fingerprint)
        if key in self._inline:
            self._inline.move_to_end(key)
            return self._inline[key]
        try:
            built = predictor.with_registry(apply_actor_set(predictor.registry, inline, "add"))
        except ActorSetError as exc:
            raise ApiError(422, "bad_actor_definition", exc.message, "actor_definitions") from exc
        self._inline[key] = built
        while len(self._inline) > self._inline_cache:
            self._inline.popitem(last=False)
        return built
