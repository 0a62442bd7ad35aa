"""Service settings: every limit configurable through STANCELENS_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from stancelens.model.loading import DEFAULT_MODEL_DIR
from stancelens.model.precision import BACKENDS, backend_choices


def _env(name: str, default, cast):
    raw = os.environ.get(f"STANCELENS_{name.upper()}")
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except ValueError as exc:
        raise ValueError(
            f"STANCELENS_{name.upper()}: expected {cast.__name__}, found {raw!r}; fix or unset the variable"
        ) from exc


@dataclass
class Settings:
    """Defaults are the ones documented in the README (section Service)."""

    model: str = str(DEFAULT_MODEL_DIR)
    max_body_bytes: int = 2_000_000
    max_documents: int = 64
    max_chars_per_document: int = 100_000
    max_sentences_per_request: int = 2_000
    max_batch_documents: int = 32
    max_wait_ms: float = 5.0
    queue_size: int = 256
    request_timeout_s: float = 30.0
    micro_batching: bool = True
    fast: bool = False  # fast path (bf16 or int8) of a transformer model (STANCELENS_FAST=1); fp32 is the reference
    # Backend of the fast path (STANCELENS_FAST_BACKEND): bf16, onnx or torch; unset: bf16 where the CPU has
    # bf16 units, else onnx (docs/measurements.md has the service figures of each).
    fast_backend: str | None = None
    api_key: str | None = field(default=None, repr=False)
    rate_limit_per_minute: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:

        if self.fast_backend is not None and self.fast_backend not in BACKENDS:
            raise ValueError(f"STANCELENS_FAST_BACKEND: expected {backend_choices()}, found {self.fast_backend!r}; "
                             "fix or unset the variable")

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "api_key":
                values["api_key"] = os.environ.get("STANCELENS_API_KEY") or None
                continue
            default = f.default
            cast = {"int": int, "float": float, "str": str, "bool": lambda v: v.lower() in {"1", "true", "yes"},
                    "int | None": int}.get(str(f.type), str)
            values[f.name] = _env(f.name, default, cast)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
