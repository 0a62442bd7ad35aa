"""Classification metrics with stable keys: per-class P/R/F1, macro and micro F1, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


def classification_report(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Macro-F1 averages over the labels that occur in gold or predictions (absent ones are not 0s)."""
    labels = list(labels)
    if len(gold) != len(pred):
        raise ValueError(f"expected as many predictions as gold labels, found {len(pred)} and {len(gold)}")
    present = [label for label in labels if label in set(gold) | set(pred)]
    if not gold:
        return {"labels": labels, "per_class": {}, "macro_f1": 0.0, "micro_f1": 0.0, "accuracy": 0.0,
                "confusion": [], "support": 0}
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    per_class = {
        label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, label in enumerate(labels)
    }
    macro = float(np.mean([per_class[label]["f1"] for label in present])) if present else 0.0
    accuracy = float(np.mean([g == q for g, q in zip(gold, pred)]))
    return {
        "labels": labels,
        "per_class": per_class,
        "macro_f1": macro,
        # Single-label multi-class: micro-F1 equals accuracy.
        "micro_f1": accuracy,
        "accuracy": accuracy,
        "confusion": confusion_matrix(gold, pred, labels=labels).tolist(),
        "support": len(gold),
    }


def span_prf(gold: set, pred: set) -> dict:
    tp = len(gold & pred)
    precision = tp / len(pred) if pred else (1.0 if not gold else 0.0)
    recall = tp / len(gold) if gold else (1.0 if not pred else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "gold": len(gold), "pred": len(pred)}
