"""Service settings: every limit configurable through a STANCELENS_* environment variable, range-checked
on start (pydantic-settings), so a typo or a zero that would mean "unbounded" stops the service with an
error naming the variable instead of weakening it."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stancelens.model.loading import DEFAULT_MODEL_DIR
from stancelens.model.precision import BACKENDS, backend_choices


class Settings(BaseSettings):
    """Defaults are the ones documented in the README (section Service)."""

    model_config = SettingsConfigDict(env_prefix="STANCELENS_", extra="ignore", protected_namespaces=())

    model: str = Field(str(DEFAULT_MODEL_DIR), min_length=1, description="'lexicon', 'tfidf:DIR' or a model directory")
    max_body_bytes: int = Field(2_000_000, ge=100, le=100_000_000, description="largest request body (413)")
    max_documents: int = Field(64, ge=1, le=10_000, description="documents per /v1/analyze request")
    max_chars_per_document: int = Field(100_000, ge=1, le=10_000_000, description="characters per document")
    max_sentences_per_request: int = Field(2_000, ge=1, le=1_000_000, description="sentences per request")
    max_batch_documents: int = Field(32, ge=1, le=4_096, description="documents per model batch")
    max_wait_ms: float = Field(5.0, ge=0, le=10_000, description="how long a batch waits for company")
    queue_size: int = Field(256, ge=1, le=100_000, description="model jobs waiting at most (full: 503)")
    request_timeout_s: float = Field(30.0, gt=0, le=3_600, description="longest model wait of a request (504)")
    max_upload_files: int = Field(8, ge=1, le=100, description="files per /v1/evaluate request")
    max_upload_bytes: int = Field(1_000_000, ge=100, le=100_000_000, description="bytes per uploaded file")
    micro_batching: bool = True
    fast: bool = Field(False, description="fast path (bf16 or int8) of a transformer model; fp32 is the reference")
    # Backend of the fast path: bf16, onnx or torch; unset: bf16 where the CPU has bf16 units, else onnx
    # (docs/measurements.md has the service figures of each).
    fast_backend: str | None = None
    api_key: SecretStr | None = Field(default=None, repr=False)
    rate_limit_per_minute: int = Field(0, ge=0, le=1_000_000, description="per API key; 0 = off")
    threads: int | None = Field(None, ge=1, le=1_024, description="torch CPU threads")
    # Set by `stancelens serve` when it trains the default model beside the service: the directory whose
    # appearance switches the service from the rules to the trained model, and the training log.
    pending_model: str | None = None
    training_log: str | None = None
    # Actor sets offered to requests (`serve --actors FILE`, repeatable; env: a JSON list of paths), added to
    # the model's registry or replacing it; requests without `actor_set` use the first.
    actor_sets: list[str] = Field(default_factory=list, max_length=64)
    actors_mode: str = "add"
    pending_poll_s: float = Field(5.0, gt=0, le=3_600, description="how often to look for the pending model")

    @field_validator("fast_backend")
    @classmethod
    def _backend(cls, value: str | None) -> str | None:
        if value is not None and value not in BACKENDS:
            raise ValueError(f"expected {backend_choices()}, found {value!r}")
        return value

    @field_validator("actors_mode")
    @classmethod
    def _actors_mode(cls, value: str) -> str:
        if value not in ("add", "replace"):
            raise ValueError(f"expected add or replace, found {value!r}")
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @property
    def key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """The environment's settings with the given overrides (None means: keep the environment's)."""
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as exc:
            raise ValueError(settings_error(exc)) from exc


def settings_error(exc: ValidationError) -> str:
    """One line per bad setting, naming the variable: 'STANCELENS_QUEUE_SIZE: expected …, found 0; fix or unset'."""
    lines = []
    for error in exc.errors():
        name = "STANCELENS_" + ".".join(str(p) for p in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        if message.startswith("expected"):  # our own validators name what they found
            lines.append(f"{name}: {message}; fix or unset the variable")
            continue
        wanted = message.removeprefix("Input should be ").split(",")[0]
        lines.append(f"{name}: expected {wanted}, found {error.get('input')!r}; fix or unset the variable")
    return "; ".join(lines)
