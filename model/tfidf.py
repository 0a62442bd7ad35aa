"""The TF-IDF + logistic-regression baseline behind the same engine interface as the transformer.

Stance: the sentence with the source's mentions replaced by ``srcent``, the target's by ``tgtent``
and other actors by ``othent`` (so direction is visible), word 1–2-grams. Framing: the mention
replaced by ``mention`` in a window of six words either side, words tagged with their side.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from stancelens.model.annotation import ModelInfo
from stancelens.model.pipeline import MentionItem, PairItem

_WORDS = re.compile(r"\w+")


def _replace(sentence: str, spans: list[tuple[tuple[int, int], str]]) -> str:
    out, pos = [], 0
    for (a, b), token in sorted(spans):
        if a < pos:
            continue
        out += [sentence[pos:a], f" {token} "]
        pos = b
    out.append(sentence[pos:])
    return "".join(out)


def stance_text(item: PairItem) -> str:
    spans = [(s, "srcent") for s in item.source_spans] + [(t, "tgtent") for t in item.target_spans]
    marked = {s for s, _ in spans}
    spans += [(o, "othent") for o in item.all_spans if o not in marked]
    return _replace(item.sentence, spans).lower()


def framing_text(item: MentionItem) -> str:
    a, b = item.span
    left = _WORDS.findall(item.sentence[:a].lower())[-6:]
    right = _WORDS.findall(item.sentence[b:].lower())[:6]
    inside = _WORDS.findall(item.sentence[a:b].lower())
    return " ".join([f"l_{w}" for w in left] + ["mention"] + [f"m_{w}" for w in inside] + [f"r_{w}" for w in right]
                    + left[-2:] + right[:3])


class TfidfEngine:
    def __init__(self, stance_model, framing_model, stance_labels: list[str], framing_labels: list[str], meta: dict):
        self.stance_model = stance_model
        self.framing_model = framing_model
        self.stance_labels = stance_labels
        self.framing_labels = framing_labels
        self.info = ModelInfo(name="tfidf", version=str(meta.get("version", "0")), hash=meta.get("hash"))

    @staticmethod
    def _probs(model, texts: list[str], labels: list[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        if model is None:  # no training data for this task: uniform
            return [{label: 1.0 / len(labels) for label in labels} for _ in texts]
        rows = model.predict_proba(texts)
        classes = list(model.classes_)
        out = []
        for row in rows:
            probs = {label: 0.0 for label in labels}
            for c, p in zip(classes, row):
                probs[labels[int(c)]] = float(p)
            out.append(probs)
        return out

    def classify(
        self, pairs: Sequence[PairItem], mentions: Sequence[MentionItem]
    ) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
        return (
            self._probs(self.stance_model, [stance_text(p) for p in pairs], self.stance_labels),
            self._probs(self.framing_model, [framing_text(m) for m in mentions], self.framing_labels),
        )

    def save(self, directory: Path) -> None:
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(
            {"stance": self.stance_model, "framing": self.framing_model, "stance_labels": self.stance_labels,
             "framing_labels": self.framing_labels, "version": self.info.version, "hash": self.info.hash},
            directory / "tfidf.joblib",
        )

    @classmethod
    def load(cls, directory: Path) -> TfidfEngine:
        import joblib

        path = Path(directory) / "tfidf.joblib"
        if not path.is_file():
            raise FileNotFoundError(
                f"model {directory}: expected a TF-IDF baseline directory with tfidf.joblib, found none; "
                "train one with `stancelens train-baseline --out DIR`"
            )
        data = joblib.load(path)
        return cls(data["stance"], data["framing"], data["stance_labels"], data["framing_labels"],
                   {"version": data.get("version"), "hash": data.get("hash")})
