"""Resolve a model name given by a user into a Predictor: 'lexicon', 'tfidf:DIR' or a model directory."""

from __future__ import annotations

from pathlib import Path

from stancelens.model.predictor import LexiconEngine, Predictor

DEFAULT_MODEL_DIR = Path("models/default")


def load_predictor(spec: str | Path | None = None, quantize: bool = False, backend: str = "torch",
                   fast: bool = False, fast_backend: str | None = None) -> Predictor:
    """`quantize`/`backend` pick the transformer's reduced-precision variant (see `TransformerEngine.load`);
    `fast=True` is the measured fastest one that holds accuracy (`FAST_BACKEND`, see `stancelens bench`)
    unless `fast_backend` names another. All are ignored by the lexicon and TF-IDF engines."""
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
    from stancelens.model.precision import FAST_BACKEND
    from stancelens.model.transformer import TransformerEngine

    engine = TransformerEngine.load(path, quantize=quantize or fast,
                                    backend=(fast_backend or FAST_BACKEND) if fast else backend)
    return Predictor(engine, registry=engine.registry, standard=engine.standard)
