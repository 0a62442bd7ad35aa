"""Training the TF-IDF + logistic-regression baseline on exactly the transformer's training data."""

from __future__ import annotations

import json
import time
from pathlib import Path

from stancelens.model.labelset import labels_dir, load_label_standard
from stancelens.model.tfidf import TfidfEngine, framing_text, stance_text
from stancelens.training.config import TrainingConfig
from stancelens.training.items import rows_to_items
from stancelens.training.trainer import Progress, load_training_data


def _pipeline():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"),
        LogisticRegression(max_iter=3000, class_weight="balanced", C=4.0),
    )


def train_tfidf(config: TrainingConfig, out: Path, say: Progress | None = None) -> dict:
    say = say or (lambda msg: print(msg, flush=True))
    started = time.time()
    standard = load_label_standard(labels_dir())
    train_rows, _, hashes = load_training_data(config, standard, say)
    rows = [r for origin in train_rows.values() for r in origin]
    pairs, pair_y, _, mentions, mention_y = rows_to_items(rows)
    stance_model = _pipeline().fit([stance_text(p) for p in pairs], pair_y) if len(set(pair_y)) > 1 else None
    framing_model = (
        _pipeline().fit([framing_text(m) for m in mentions], mention_y) if len(set(mention_y)) > 1 else None
    )
    engine = TfidfEngine(stance_model, framing_model, list(standard.stance), list(standard.framing),
                         {"version": standard.version})
    out.mkdir(parents=True, exist_ok=True)
    engine.save(out)
    info = {"training_minutes": round((time.time() - started) / 60, 2), "pairs": len(pair_y),
            "mentions": len(mention_y), "data_hashes": hashes, "config": config.to_dict()}
    (out / "training.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    say(f"TF-IDF baseline: {len(pair_y)} pairs, {len(mention_y)} framed mentions -> {out}")
    return info
