"""Resolve a model name given by a user into a Predictor: 'lexicon', 'tfidf:DIR' or a model directory."""

from __future__ import annotations

from pathlib import Path

from stancelens.model.lexicon import LexiconEngine
from stancelens.model.precision import FAST_BACKEND
from stancelens.model.predictor import Predictor

DEFAULT_MODEL_DIR = Path("models/default")


def load_predictor(spec: str | Path | None = None, fast: bool = False, backend: str | None = None) -> Predictor:
    """`backend` picks a reduced-precision encoder backend of a transformer model (`BACKENDS`, see
    `TransformerEngine.load`); `fast=True` without one takes this CPU's fast path (`FAST_BACKEND`);
    neither gives the fp32 reference. The lexicon and TF-IDF engines ignore both."""
    spec = str(spec) if spec is not None else str(DEFAULT_MODEL_DIR)
    if spec == "lexicon":
        return Predictor(LexiconEngine())
    if spec.startswith("tfidf:"):
        from stancelens.model.tfidf import TfidfEngine

        return Predictor(TfidfEngine.load(Path(spec[len("tfidf:") :])))
    path = Path(spec)
    if not path.is_dir():
        raise FileNotFoundError(
            f"model {spec!r}: expected 'lexicon', 'tfidf:DIR' or a trained model directory, found no such "
            "directory; train one with `stancelens train --out DIR` or pass --model lexicon"
        )
    if (path / "tfidf.joblib").exists():
        from stancelens.model.tfidf import TfidfEngine

        return Predictor(TfidfEngine.load(path))
    from stancelens.model.transformer import TransformerEngine

    engine = TransformerEngine.load(path, backend=backend or (FAST_BACKEND if fast else None))
    return Predictor(engine, registry=engine.registry, standard=engine.standard)
