"""Fine-tuning the encoder with its stance and framing heads, on CPU, reproducibly.

`train(config, out)` loads the data the config names (saying which sources are absent), fine-tunes
with class-weighted losses, validates each epoch, keeps the best epoch by the selection metric,
fits one temperature per head on validation data, and writes the model directory atomically with
its config, data hashes and metrics beside the weights.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from stancelens.model.annotation import read_annotations
from stancelens.model.files import atomic_writer, replace_directory
from stancelens.model.labelset import LabelStandard, labels_dir, load_label_standard
from stancelens.model.loading import load_predictor
from stancelens.model.precision import cpu_has_native_bf16
from stancelens.model.predictor import Predictor, boost_attached_term
from stancelens.model.registry import RawMention
from stancelens.model.transformer import (
    FOREIGN_CONVENTIONS,
    SPECIAL_TOKENS,
    HeadedEncoder,
    TransformerEngine,
    check_base_model,
    collate,
    default_base_model,
    directory_hash,
    mark_and_encode,
    ranges_tensor,
)
from stancelens.training import data as D
from stancelens.training.added import ORIGIN as ADDED
from stancelens.training.added import keep_replay, load_added
from stancelens.training.calibration import expected_calibration_error, fit_temperature, fit_temperature_and_bias
from stancelens.training.config import TrainingConfig
from stancelens.training.evaluate import evaluate_predictor
from stancelens.training.items import row_convention, rows_to_items
from stancelens.training.metrics import classification_report
from stancelens.training.relabelled import ORIGIN as RELABELLED
from stancelens.training.relabelled import read_references, relabelled_rows
from stancelens.training.styles import restyle

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


class TrainingError(ValueError):
    pass


@dataclass
class TrainItem:
    input_ids: list[int]
    pairs: list[tuple[list[tuple[int, int] | None], list[tuple[int, int] | None], int]]
    mentions: list[tuple[tuple[int, int] | None, int]]
    convention: str = "news"  # the stance definition its pair labels follow (see HeadedEncoder)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def training_precision(config: TrainingConfig) -> str:
    if config.precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return config.precision


# -- data loading ----------------------------------------------------------------------------
def packaged_path(value: str | None, folder: str) -> Path | None:
    """A configured data path; the label data ships as package data, so a relative path missing from the
    working directory falls back to the installed copy in labels/<folder>/."""
    path = TrainingConfig.resolve_path(value)
    if path is not None and not path.exists():
        installed = labels_dir() / folder / path.name
        if installed.exists():
            return installed
    return path


def authored_corpus_path(config: TrainingConfig) -> Path | None:
    """The configured authored corpus (labels/train/)."""
    return packaged_path(config.authored_path, "train")


def load_training_data(config: TrainingConfig, standard: LabelStandard, say: Progress,
                       pools: dict[str, list[dict]] | None = None) -> tuple[dict, dict, dict]:
    """(train rows per origin, validation rows per origin, data file hashes). When `pools` is given it
    receives the training lines left out by sampling (DSE's all-neutral lines not drawn), from which
    later epochs may draw afresh."""
    rng = random.Random(config.seed)
    train: dict[str, list[dict]] = {}
    valid: dict[str, list[dict]] = {}
    hashes: dict[str, str] = {}
    authored = authored_corpus_path(config)
    if authored is not None:
        if not authored.exists():
            raise TrainingError(
                f"authored corpus {config.authored_path}: no such file; set authored_path in the config to the "
                "corpus in the annotation format, or null to train without it"
            )
        rows = list(D.authored_examples(authored, standard))
        hashes[str(authored)] = D.file_sha256(authored)
        train["authored"] = [r for r in rows if not D.in_validation(r["text"], config.authored_valid_fraction)]
        valid["authored"] = [r for r in rows if D.in_validation(r["text"], config.authored_valid_fraction)]
        say(f"authored corpus: {len(train['authored'])} train / {len(valid['authored'])} validation sentences")
    dse = config.resolve_path(config.dse_path)
    if dse is not None and (dse / "train.txt").exists():
        rows = list(D.dse_examples(dse / "train.txt", standard))
        neutral = [r for r in rows if r["dse_label"] == 0]
        other = [r for r in rows if r["dse_label"] != 0]
        keep = rng.sample(neutral, int(len(neutral) * config.dse_neutral_fraction))
        if pools is not None:
            kept = {id(r) for r in keep}
            pools["dse"] = [r for r in neutral if id(r) not in kept]
        rows = other + keep
        rng.shuffle(rows)
        if config.dse_max_train:
            rows = rows[: config.dse_max_train]
        train["dse"] = rows
        hashes[str(dse / "train.txt")] = D.file_sha256(dse / "train.txt")
        if (dse / "valid.txt").exists():
            valid["dse"] = list(D.dse_examples(dse / "valid.txt", standard))
            hashes[str(dse / "valid.txt")] = D.file_sha256(dse / "valid.txt")
        say(f"DSE: {len(train['dse'])} train lines (neutral sampled at {config.dse_neutral_fraction}), "
            f"{len(valid.get('dse', []))} validation lines")
    elif config.dse_path:
        say(f"DSE: not found at {dse}; training without it (set dse_path or STANCELENS_DATA)")
    load_relabelled(config, standard, say, train, valid, hashes)
    added = load_added(config, standard, say, train, valid, hashes)
    if added:
        hashes["added_files"] = added  # type: ignore[assignment]
    keep_replay(config, train, pools if pools is not None else {}, say)
    seesaw = config.resolve_path(config.seesaw_path)
    if seesaw is not None and (seesaw / "meta").is_dir():
        rows = list(D.seesaw_examples(seesaw, "train", standard))
        rng.shuffle(rows)
        if config.seesaw_max_train:
            rows = rows[: config.seesaw_max_train]
        train["seesaw"] = rows
        valid["seesaw"] = list(D.seesaw_examples(seesaw, "valid", standard))
        hashes[str(seesaw)] = D.file_sha256(seesaw / "annotations")
        say(f"SEESAW: {len(rows)} train / {len(valid['seesaw'])} validation sentences (CC BY-NC-SA 4.0)")
    elif config.seesaw_path:
        say(f"SEESAW: not found at {seesaw}; training without it")
    if not any(train.values()):
        raise TrainingError(
            "training set is empty: no authored corpus, DSE or SEESAW examples were found; check authored_path, "
            "dse_path and seesaw_path in the config"
        )
    return train, valid, hashes


def relabelled_references_paths(config: TrainingConfig) -> list[Path]:
    """The configured references of relabelled public data (labels/relabelled/), one file per round."""
    values = config.relabelled_path if isinstance(config.relabelled_path, list) else [config.relabelled_path]
    return [p for p in (packaged_path(v, "relabelled") for v in values) if p is not None]


def load_relabelled(config: TrainingConfig, standard: LabelStandard, say: Progress, train: dict, valid: dict,
                    hashes: dict) -> None:
    """DSE lines relabelled under our codebook: train split to training, dev split to validation. Their
    text comes from the DSE folder; without it they are left out, and training says so."""
    paths = relabelled_references_paths(config)
    if not paths:
        return
    for path in paths:
        if not path.exists():
            raise TrainingError(f"relabelled_path {path}: no such file; set it to labels/relabelled/dse.jsonl (a "
                                "list of files for several rounds), or null to train without relabelled lines")
    dse = config.resolve_path(config.dse_path) or config.resolve_path("${STANCELENS_DATA}/dse")
    if dse is None or not (dse / "train.txt").exists():
        say(f"relabelled DSE lines: DSE not found at {dse}; training without them (set dse_path or STANCELENS_DATA)")
        return
    references = [r for path in paths for r in read_references(path)]
    train[RELABELLED] = relabelled_rows(dse, "train", standard, references)
    valid[RELABELLED] = relabelled_rows(dse, "dev", standard, references)
    for path in paths:
        hashes[str(path)] = D.file_sha256(path)
    say(f"relabelled DSE lines (our codebook): {len(train[RELABELLED])} train / {len(valid[RELABELLED])} dev lines "
        "(test lines are never loaded for training)")


def encode_rows(rows: list[dict], tokenizer, encoding: str, max_length: int,
                conventions: Sequence[str] = FOREIGN_CONVENTIONS) -> list[TrainItem]:
    items: list[TrainItem] = []
    for r in rows:
        convention = row_convention(r, conventions)
        spans = [tuple(s) for s in r["spans"]]
        if encoding == "sentence":
            enc = mark_and_encode(tokenizer, r["text"], spans, {}, max_length)
            pairs = [
                ([enc.span_tokens.get(spans[i]) for i in src], [enc.span_tokens.get(spans[j]) for j in tgt], y)
                for src, tgt, y in zip(r["pair_src"], r["pair_tgt"], r["pair_label"])
            ]
            mentions = [(enc.span_tokens.get(spans[k]), y) for k, y in enumerate(r["framing"]) if y >= 0]
            items.append(TrainItem(enc.input_ids, pairs, mentions, convention))
        else:
            for src, tgt, y in zip(r["pair_src"], r["pair_tgt"], r["pair_label"]):
                roles = {spans[i]: "S" for i in src} | {spans[j]: "T" for j in tgt}
                enc = mark_and_encode(tokenizer, r["text"], spans, roles, max_length)
                items.append(TrainItem(
                    enc.input_ids,
                    [([enc.span_tokens.get(spans[i]) for i in src], [enc.span_tokens.get(spans[j]) for j in tgt], y)],
                    [],
                    convention,
                ))
            if any(y >= 0 for y in r["framing"]):
                enc = mark_and_encode(tokenizer, r["text"], spans, {}, max_length)
                mentions = [(enc.span_tokens.get(spans[k]), y) for k, y in enumerate(r["framing"]) if y >= 0]
                items.append(TrainItem(enc.input_ids, [], mentions))
    return items


def class_weights(counts: Counter, n_classes: int, scheme: str) -> torch.Tensor:
    total = sum(counts.values()) or 1
    weights = []
    for c in range(n_classes):
        freq = counts.get(c, 0) / total
        if scheme == "none" or freq == 0:
            weights.append(1.0)
        elif scheme == "inverse":
            weights.append(1.0 / freq)
        else:
            weights.append(1.0 / math.sqrt(freq))
    w = torch.tensor(weights, dtype=torch.float)
    present = torch.tensor([counts.get(c, 0) > 0 for c in range(n_classes)])
    return w / w[present].mean() if present.any() else w


def length_grouped_batches(items: list[TrainItem], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, then sort within windows of 50 batches by length: less padding, still random order."""
    order = list(range(len(items)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(items[i].input_ids))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def epoch_draw(n_pool: int, n_drawn: int, epoch: int, seed: int, resample: bool) -> list[int]:
    """Which of a pool of subsampled lines an epoch trains on: the first `n_drawn` (the initial sample)
    in epoch 1 and whenever resampling is off, otherwise a fresh draw fixed by seed and epoch."""
    if epoch == 1 or not resample:
        return list(range(n_drawn))
    return random.Random(seed * 1000 + epoch).sample(range(n_pool), n_drawn)


def source_first(src: list[tuple[int, int] | None], tgt: list[tuple[int, int] | None]) -> bool:
    """Whether the source is named before the target (a cropped-away side counts as first)."""
    s = [r[0] for r in src if r is not None]
    t = [r[0] for r in tgt if r is not None]
    return not s or not t or min(s) < min(t)


def direction_weights(cells: Counter, n_classes: int) -> dict[tuple[int, bool], float]:
    """Per (stance, source named first) weights that give both text orders of a stance the same total
    weight, softened by a square root. Stance voiced by the later-named actor ("X was praised by Y",
    "..., Y said") is rare in training data and is where the model failed (DSE's reverse classes)."""
    weights = {}
    for y in range(n_classes):
        total = cells.get((y, True), 0) + cells.get((y, False), 0)
        for first in (True, False):
            n = cells.get((y, first), 0)
            weights[(y, first)] = math.sqrt(total / (2 * n)) if n else 1.0
    return weights


class StanceLoss(nn.Module):
    """Cross-entropy weighted per example by class weight × direction weight (normalised by their sum,
    as torch's weighted mean is)."""

    def __init__(self, class_weight: torch.Tensor, direction: dict[tuple[int, bool], float] | None = None):
        super().__init__()
        self.class_weight = class_weight
        self.direction = direction

    def forward(self, logits: torch.Tensor, ys: torch.Tensor, firsts: list[bool]) -> torch.Tensor:
        losses = nn.functional.cross_entropy(logits, ys, reduction="none")
        weights = self.class_weight[ys]
        if self.direction is not None:
            weights = weights * torch.tensor([self.direction[(int(y), f)] for y, f in zip(ys.tolist(), firsts)])
        return (weights * losses).sum() / weights.sum()


def batch_loss(model: HeadedEncoder, items: list[TrainItem], pad_id: int, stance_loss, framing_loss, framing_weight):
    input_ids, attention = collate([it.input_ids for it in items], pad_id)
    hidden = model.encode(input_ids, attention)
    loss = torch.zeros(())
    rows, src, tgt, ys, conventions = [], [], [], [], []
    for r, it in enumerate(items):
        for s, t, y in it.pairs:
            rows.append(r)
            src.append(s)
            tgt.append(t)
            ys.append(y)
            conventions.append(it.convention)
    if rows:
        logits = model.stance_logits(hidden, torch.tensor(rows), ranges_tensor(src), ranges_tensor(tgt), conventions)
        loss = loss + stance_loss(logits, torch.tensor(ys), [source_first(a, b) for a, b in zip(src, tgt)])
    rows, rng_, ys = [], [], []
    for r, it in enumerate(items):
        for span, y in it.mentions:
            rows.append(r)
            rng_.append([span])
            ys.append(y)
    if rows:
        logits = model.framing_logits(hidden, torch.tensor(rows), ranges_tensor(rng_))
        loss = loss + framing_weight * framing_loss(logits, torch.tensor(ys))
    return loss


# -- evaluation through the engine (the same code path as prediction) --------------------------
def evaluate_rows(engine: TransformerEngine, rows: list[dict], standard: LabelStandard) -> dict:
    """Logits and metrics for validation rows of one origin."""
    pair_items, pair_y, pair_rows, mention_items, mention_y = rows_to_items(rows)
    stance_logits, framing_logits = engine.logits(pair_items, mention_items)
    result: dict = {"stance_logits": stance_logits, "stance_y": pair_y,
                    "framing_logits": framing_logits, "framing_y": mention_y}
    if pair_y:
        pred = stance_logits.argmax(-1).tolist()
        result["stance"] = classification_report(
            [standard.stance[y] for y in pair_y], [standard.stance[p] for p in pred], list(standard.stance)
        )
        dse_gold, dse_pred = [], []
        for i in range(0, len(pair_rows) - 1):
            row = pair_rows[i]["row"]
            if row["dse_label"] >= 0 and pair_rows[i]["k"] == 0 and pair_rows[i + 1]["row"] is row:
                probs = torch.softmax(stance_logits[i : i + 2], -1)
                labels = [standard.stance[p] for p in pred[i : i + 2]]
                dse_pred.append(D.directed_to_dse(
                    labels[0], labels[1],
                    dict(zip(standard.stance, probs[0].tolist())), dict(zip(standard.stance, probs[1].tolist())),
                ))
                dse_gold.append(row["dse_label"])
        if dse_gold:
            result["dse"] = classification_report([str(g) for g in dse_gold], [str(p) for p in dse_pred],
                                                  ["0", "1", "2", "3", "4"])
    if mention_y:
        pred = framing_logits.argmax(-1).tolist()
        result["framing"] = classification_report(
            [standard.framing[y] for y in mention_y], [standard.framing[p] for p in pred], list(standard.framing)
        )
    return result


# How much an attached lexicon term may pull the framing answer (model.predictor.boost_attached_term).
FRAMING_TERM_BOOSTS = (1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)


def choose_framing_term_boost(engine: TransformerEngine, docs: list, standard: LabelStandard) -> dict:
    """Framing macro-F1 on validation documents (gold mentions given) for each boost; the best one is
    chosen, the smallest on a tie. The same predictor path as at inference, so the rules see what
    they will see in service."""

    engine.framing_term_boost = 1.0
    predictor = Predictor(engine, standard=standard)
    predicted = predictor.annotate_given_mentions(docs, tasks=("framing",))
    gold, probs, rules = [], [], []
    for doc, pred in zip(docs, predicted):
        for gs, ps in zip(doc.sentences, pred.sentences):
            raw = [RawMention(m.start, m.end, m.text, m.actor, m.kind, ps.index) for m in ps.mentions]
            decisions = predictor.framer.frame_sentence(pred.text, (ps.start, ps.end), raw)
            by_span = {(m.start, m.end): m.framing.label for m in gs.mentions}
            for m, decision in zip(ps.mentions, decisions):
                gold.append(by_span[(m.start, m.end)])
                probs.append(m.framing.probs)
                rules.append(decision.label)
    grid = {}
    for boost in FRAMING_TERM_BOOSTS:
        pred_labels = []
        for p, rule in zip(probs, rules):
            fused = boost_attached_term(p, rule, boost)
            pred_labels.append(max(fused, key=lambda k: fused[k]))
        grid[str(boost)] = classification_report(gold, pred_labels, list(standard.framing))["macro_f1"]
    chosen = max(FRAMING_TERM_BOOSTS, key=lambda b: (round(grid[str(b)], 6), -b))
    return {"chosen": chosen, "macro_f1_by_boost": grid, "mentions": len(gold)}


def authored_validation_documents(config: TrainingConfig) -> list:
    """The authored corpus's validation sentences as annotations (the split `load_training_data` makes)."""

    path = authored_corpus_path(config)
    if path is None or not path.exists():
        return []
    docs = []
    for doc in read_annotations(path):
        kept = [s for s in doc.sentences if s.mentions and D.in_validation(s.text, config.authored_valid_fraction)]
        if kept:
            docs.append(doc.model_copy(update={"sentences": kept}))
    return docs


def selection_score(results: dict[str, dict]) -> float:
    scores = []
    if "authored" in results:
        if "stance" in results["authored"]:
            scores.append(results["authored"]["stance"]["macro_f1"])
        if "framing" in results["authored"]:
            scores.append(results["authored"]["framing"]["macro_f1"])
    if "dse" in results and "dse" in results["dse"]:
        scores.append(results["dse"]["dse"]["macro_f1"])
    if RELABELLED in results and "stance" in results[RELABELLED]:
        scores.append(results[RELABELLED]["stance"]["macro_f1"])
    if "seesaw" in results and "stance" in results["seesaw"]:
        scores.append(results["seesaw"]["stance"]["macro_f1"])
    # A fine-tune on added annotations chooses its epoch by their held-out part as much as by the recipe's
    # validation: the new domain and what the model knew weigh alike.
    added = [report["macro_f1"] for task in ("stance", "framing")
             for report in [results.get(ADDED, {}).get(task)] if report and report.get("support", 1)]
    parts = [float(np.mean(x)) for x in (scores, added) if x]
    return float(np.mean(parts)) if parts else 0.0


def _summary(results: dict[str, dict]) -> dict:
    out: dict = {}
    for origin, r in results.items():
        for task in ("stance", "framing", "dse"):
            if task in r:
                out[f"{origin}.{task}"] = {k: r[task][k] for k in ("macro_f1", "micro_f1", "per_class", "confusion", "labels", "support")}
    return out


# -- the training run, in named steps ------------------------------------------------------------
@dataclass
class TrainingSet:
    """What one epoch trains on: the fixed items plus a draw of DSE's all-neutral lines (resampled each
    epoch after the first when the config says so, at the same cost per epoch)."""

    fixed: list[TrainItem]
    neutral_groups: list[list[TrainItem]]
    drawn_per_epoch: int
    seed: int
    resample: bool

    def epoch_items(self, epoch: int) -> list[TrainItem]:
        drawn = epoch_draw(len(self.neutral_groups), self.drawn_per_epoch, epoch, self.seed, self.resample)
        return self.fixed + [it for i in drawn for it in self.neutral_groups[i]]


@dataclass
class BestEpoch:
    """The epoch kept so far: its selection score, weights and validation results."""

    score: float
    state: dict
    epoch: int
    results: dict


@dataclass
class Calibration:
    """Temperature (and stance bias) per readout, fitted on the chosen epoch's validation logits."""

    temperatures: dict[str, float]
    biases: dict[str, list[float]]
    report: dict[str, dict]


@dataclass
class LoopOutcome:
    best: BestEpoch
    history: list[dict]
    steps: int
    stopped_by_clock: bool = False


def build_encoder(config: TrainingConfig, standard: LabelStandard, conventions: tuple[str, ...]):
    """The base encoder with the marker tokens and fresh heads, or the model of `init_from` with its heads and
    readouts; returns (tokenizer, model, base path, conventions)."""
    from transformers import AutoModel, AutoTokenizer

    if config.init_from:
        return continued_encoder(Path(config.init_from), standard)
    base = check_base_model(Path(config.base_model) if config.base_model else default_base_model())
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})
    encoder = AutoModel.from_pretrained(base, local_files_only=True)
    encoder.resize_token_embeddings(len(tokenizer))
    model = HeadedEncoder(encoder, len(standard.stance), len(standard.framing), conventions=conventions)
    return tokenizer, model, base, conventions


def continued_encoder(directory: Path, standard: LabelStandard):
    """A trained model to continue from (`train --from`): same labels required, its readouts kept."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    meta_path = directory / "stancelens.json"
    if not meta_path.is_file():
        raise TrainingError(f"--from {directory}: expected a stancelens model directory (with stancelens.json), found "
                            "none; train one first or give the path of models/default")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    labels = (list(meta["stance_id2label"].values()), list(meta["framing_id2label"].values()))
    if labels != (list(standard.stance), list(standard.framing)):
        raise TrainingError(f"--from {directory}: expected the label standard's labels {list(standard.stance)} / "
                            f"{list(standard.framing)}, found {labels[0]} / {labels[1]}; continue from a model "
                            "trained on this label standard")
    heads = load_file(str(directory / "heads.safetensors"))
    conventions = tuple(sorted({k.split(".")[1] for k in heads if k.startswith("convention_readouts.")}))
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    encoder = AutoModel.from_pretrained(directory, local_files_only=True)
    model = HeadedEncoder(encoder, len(standard.stance), len(standard.framing), conventions=conventions)
    model.load_state_dict(heads, strict=False)
    return tokenizer, model, directory, conventions


def repeated(rows: list[dict], times: int, styled: int, seed: int) -> list[dict]:
    """The rows `times` times, of which `styled` copies are restyled into news forms (training/styles.py)."""
    return rows * (times - styled) + [restyle(r, k, seed) for k in range(1, styled + 1) for r in rows]


def build_training_set(config: TrainingConfig, train_rows: dict[str, list[dict]], pools: dict[str, list[dict]],
                       tokenizer, conventions: tuple[str, ...]) -> TrainingSet:
    """Encode the rows once. The authored corpus is small and in-domain: it is repeated so that each epoch
    sees it several times. DSE's all-neutral lines are subsampled per epoch."""
    repeat = {"authored": config.authored_repeat, RELABELLED: config.relabelled_repeat, ADDED: config.added_repeat}
    all_rows = [r for origin, rows in train_rows.items()
                for r in repeated(rows, repeat.get(origin, 1), config.authored_styles if origin == "authored" else 0,
                                  config.seed)]

    def dse_neutral(row: dict) -> bool:
        return row.get("origin") == "dse" and row["dse_label"] == 0

    resampled = [r for r in all_rows if dse_neutral(r)]
    fixed = encode_rows([r for r in all_rows if not dse_neutral(r)], tokenizer, config.encoding, config.max_length,
                        conventions)
    groups = [encode_rows([r], tokenizer, config.encoding, config.max_length, conventions)
              for r in resampled + (pools.get("dse", []) if config.dse_neutral_resample else [])]
    return TrainingSet(fixed, groups, len(resampled), config.seed, config.dse_neutral_resample)


def build_losses(items: list[TrainItem], standard: LabelStandard, config: TrainingConfig, say: Progress):
    """Class-weighted losses (stance also weighted by which actor the sentence names first)."""
    stance_counts = Counter(y for it in items for _, _, y in it.pairs)
    framing_counts = Counter(y for it in items for _, y in it.mentions)
    say(f"training items: {len(items)} encoder inputs, {sum(stance_counts.values())} pairs, "
        f"{sum(framing_counts.values())} framed mentions")
    direction_cells = Counter((y, source_first(a, b)) for it in items for a, b, y in it.pairs)
    stance_loss = StanceLoss(
        class_weights(stance_counts, len(standard.stance), config.class_weighting),
        direction_weights(direction_cells, len(standard.stance)) if config.direction_weighting else None,
    )
    say("stance pairs by (label, source named first): " + ", ".join(
        f"{standard.stance[y]}/{'first' if f else 'second'} {n}" for (y, f), n in sorted(direction_cells.items())))
    framing_loss = nn.CrossEntropyLoss(
        weight=class_weights(framing_counts, len(standard.framing), config.class_weighting)
    )
    return stance_loss, framing_loss


def build_optimizer(model: HeadedEncoder, config: TrainingConfig, total_steps: int):
    """AdamW (fused: one pass over all parameters instead of one per tensor) with linear warm-up and decay."""
    from transformers import get_linear_schedule_with_warmup

    head_params = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    optimizer = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": config.learning_rate},
            {"params": head_params, "lr": config.head_learning_rate},
        ],
        weight_decay=config.weight_decay,
        fused=True,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    return optimizer, scheduler


def model_meta(standard: LabelStandard, config: TrainingConfig, conventions: tuple[str, ...]) -> dict:
    return {
        "stance_id2label": {str(i): label for i, label in enumerate(standard.stance)},
        "framing_id2label": {str(i): label for i, label in enumerate(standard.framing)},
        "encoding": config.encoding,
        "max_length": config.max_length,
        "conventions": list(conventions),
    }


def run_epochs(model: HeadedEncoder, tokenizer, training_set: TrainingSet, valid_rows: dict[str, list[dict]],
               engine: TransformerEngine, losses_fn: tuple, optimizer, scheduler, config: TrainingConfig,
               standard: LabelStandard, precision: str, total_steps: int, started: float, progress: bool,
               say: Progress) -> LoopOutcome:
    """The epochs: steps, validation after each epoch, the best epoch kept, early stopping."""
    from tqdm import tqdm

    stance_loss, framing_loss = losses_fn
    rng = random.Random(config.seed)
    steps_per_epoch = math.ceil(len(training_set.epoch_items(1)) / config.batch_size)
    history: list[dict] = []
    losses: list[float] = []
    best: BestEpoch | None = None
    stale = 0
    step = 0
    out_of_time = False
    for epoch in range(1, config.epochs + 1):
        model.train()
        items = training_set.epoch_items(epoch)
        batches = length_grouped_batches(items, config.batch_size, rng)
        bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", unit="step", disable=not progress)
        for batch in bar:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = batch_loss(model, [items[i] for i in batch], tokenizer.pad_token_id, stance_loss,
                                  framing_loss, config.framing_loss_weight)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            step += 1
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if not progress and step % 50 == 0:
                rate = step / max(time.time() - started, 1e-9)
                say(f"step {step}/{total_steps} loss {np.mean(losses[-50:]):.3f} ({rate:.2f} steps/s overall)")
            if config.steps_limit and step >= config.steps_limit:
                break
            if (time.time() - started) / 60 >= config.max_minutes:
                say(f"WARNING: the wall-clock guard of {config.max_minutes} min stopped training at step {step} "
                    f"of {total_steps} (epoch {epoch}); the model is marked incomplete in metrics.json — this CPU "
                    "is slower than the recipe expects; raise max_minutes to run the recipe to its end")
                out_of_time = True
                break
        model.eval()
        results = {origin: evaluate_rows(engine, rows, standard) for origin, rows in valid_rows.items() if rows}
        score = selection_score(results)
        minutes = (time.time() - started) / 60
        history.append({"epoch": epoch, "step": step, "selection": score, "minutes": round(minutes, 2),
                        "mean_loss": float(np.mean(losses[-steps_per_epoch:])) if losses else None,
                        **{k: v["macro_f1"] for k, v in _flat_macro(results).items()}})
        say(f"epoch {epoch}: selection {score:.4f} " + " ".join(
            f"{k}={v['macro_f1']:.3f}" for k, v in _flat_macro(results).items()) + f" ({minutes:.1f} min)")
        if best is None or score > best.score:
            best = BestEpoch(score, copy.deepcopy(model.state_dict()), epoch, results)
            stale = 0
        else:
            stale += 1
        if stale >= config.patience:
            say(f"early stopping: no improvement for {stale} epoch(s)")
            break
        if out_of_time or (config.steps_limit and step >= config.steps_limit):
            break
    assert best is not None
    return LoopOutcome(best, history, step, out_of_time)


def calibrate(results: dict[str, dict], conventions: tuple[str, ...], config: TrainingConfig) -> Calibration:
    """Temperature scaling per head on the chosen epoch's validation logits. Stance is calibrated per readout:
    news probabilities on the news validation pairs alone (the product's domain), DSE's on DSE's. Without
    a DSE readout all pairs share the news one."""
    report: dict[str, dict] = {}
    temperatures: dict[str, float] = {}
    biases: dict[str, list[float]] = {}
    readout_of = {origin: (origin if origin in conventions else "news") for origin in results}
    groups = [("framing", list(results))]
    groups += [(key, [o for o in results if readout_of[o] == readout])
               for readout, key in [("news", "stance"), *[(c, f"stance@{c}") for c in conventions]]]
    for key, origins in groups:
        task = key.split("@")[0]
        logits = [results[o][f"{task}_logits"] for o in origins if len(results[o][f"{task}_y"])]
        ys = [torch.tensor(results[o][f"{task}_y"]) for o in origins if len(results[o][f"{task}_y"])]
        if not logits:
            if key == task:
                temperatures[task] = 1.0
            continue
        lg, y = torch.cat(logits), torch.cat(ys)
        if task == "stance" and config.stance_bias_calibration:
            t, b = fit_temperature_and_bias(lg, y)
        else:
            t, b = fit_temperature(lg, y), [0.0] * lg.shape[-1]
        temperatures[key] = t
        biases[key] = b
        calibrated = torch.softmax(lg / t + torch.tensor(b), -1)
        report[key] = {
            "temperature": t,
            "bias": b,
            "ece_before": expected_calibration_error(torch.softmax(lg, -1), y),
            "ece_after": expected_calibration_error(calibrated, y),
            "macro_f1_before": _macro_f1(lg.argmax(-1), y, lg.shape[-1]),
            "macro_f1_after": _macro_f1(calibrated.argmax(-1), y, lg.shape[-1]),
            "n": len(y),
        }
    return Calibration(temperatures, biases, report)


def carry_calibration(calibration: Calibration, directory: Path) -> None:
    meta = json.loads((directory / "stancelens.json").read_text(encoding="utf-8"))
    for key, value in (meta.get("temperature") or {}).items():
        if key not in calibration.temperatures or key not in calibration.report:
            calibration.temperatures[key] = value
            if key in (meta.get("bias") or {}):
                calibration.biases[key] = meta["bias"][key]


def record_seed_gold(out: Path, metrics: dict, say: Progress) -> None:
    """Seed gold figures of the saved model, added to its metrics.json (a test set: never fed back)."""
    test = seed_gold_figures(out)
    if not test:
        return
    metrics["test_seed_gold"] = test
    stored = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    stored["test_seed_gold"] = test
    with atomic_writer(out / "metrics.json") as handle:
        json.dump(stored, handle, indent=2, default=float)
    say("seed gold (test set, never used for selection): " + ", ".join(
        f"{k}={v:.3f}" for k, v in test.items() if isinstance(v, float)))


def check_output_directory(out: Path) -> None:
    """`--out` may be new, empty, or a model directory (replaced atomically at the end); anything else is a
    folder of the user's that training would delete, so it is refused before any work starts."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "stancelens.json").is_file())):
        raise TrainingError(f"--out {out}: expected a new folder or a stancelens model directory, found "
                            f"{'a file' if not out.is_dir() else 'a folder that is not a model'}; choose another "
                            "--out (training replaces a model directory and nothing else)")


def configure_runtime(config: TrainingConfig) -> None:
    from transformers.utils import logging as hf_logging

    set_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # the per-load "Loading weights" bar is noise in every command
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def train(config: TrainingConfig, out: Path, progress: bool = True, say: Progress | None = None) -> dict:
    """Load the data, fine-tune, keep the best epoch, calibrate, choose the framing boost, save, and
    report the seed gold beside the weights."""
    say = say or (lambda msg: print(msg, flush=True))
    check_output_directory(out)
    started = time.time()
    configure_runtime(config)
    standard = load_label_standard(labels_dir())
    pools: dict[str, list[dict]] = {}
    train_rows, valid_rows, hashes = load_training_data(config, standard, say, pools)
    # A readout only for a convention with training data: an untrained one would answer at random.
    conventions = tuple(c for c in FOREIGN_CONVENTIONS if config.dse_readout and train_rows.get(c))
    tokenizer, model, base, conventions = build_encoder(config, standard, conventions)
    training_set = build_training_set(config, train_rows, pools, tokenizer, conventions)
    first_epoch = training_set.epoch_items(1)
    losses_fn = build_losses(first_epoch, standard, config, say)
    steps_per_epoch = math.ceil(len(first_epoch) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.steps_limit:
        total_steps = min(total_steps, config.steps_limit)
    optimizer, scheduler = build_optimizer(model, config, total_steps)
    precision = training_precision(config)
    say(f"training precision: {precision}" + (" (autocast; weights, validation and inference fp32)"
                                              if precision == "bf16" else ""))
    meta = model_meta(standard, config, conventions)
    engine = TransformerEngine(model, tokenizer, meta)
    engine.batch_size = config.eval_batch_size
    loop = run_epochs(model, tokenizer, training_set, valid_rows, engine, losses_fn, optimizer, scheduler, config,
                      standard, precision, total_steps, started, progress, say)
    model.load_state_dict(loop.best.state)
    model.eval()
    calibration = calibrate(loop.best.results, conventions, config)
    if config.init_from:  # a readout without validation data here keeps the calibration it had
        carry_calibration(calibration, Path(config.init_from))
    say("calibration: " + ", ".join(f"{k} T={v['temperature']:.2f} ECE {v['ece_before']:.3f}->{v['ece_after']:.3f}"
                                    for k, v in calibration.report.items()))
    minutes = (time.time() - started) / 60
    metrics = {
        "best_epoch": loop.best.epoch,
        "selection_metric": loop.best.score,
        "history": loop.history,
        "validation": _summary(loop.best.results),
        "calibration": calibration.report,
        "ece": calibration.report.get("stance", {}).get("ece_after"),
        "training_minutes": round(minutes, 2),
        "training_precision": precision,
        "steps": loop.steps,
        "planned_steps": total_steps,
        "complete": not loop.stopped_by_clock,
        "incomplete_reason": (f"the wall-clock guard of {config.max_minutes} min stopped the loop at step "
                              f"{loop.steps} of {total_steps}" if loop.stopped_by_clock else None),
        "data": {origin: len(rows) for origin, rows in train_rows.items()},
        "validation_data": {origin: len(rows) for origin, rows in valid_rows.items()},
        "licence_note": (
            "trained with SEESAW (CC BY-NC-SA 4.0): non-commercial use only" if "seesaw" in train_rows else None
        ),
        "added": hashes.pop("added_files", []),
        "init_from": init_record(config),
    }
    meta.update({
        "name": out.name or "stancelens",
        "version": f"{standard.version}+{time.strftime('%Y%m%d%H%M%S', time.gmtime())}",
        "temperature": calibration.temperatures,
        "bias": calibration.biases,
        "base_model": str(base),
        "label_standard": standard.version,
        "seed": config.seed,
    })
    # Chosen after calibration: the boost acts on the probabilities the service reports.
    valid_docs = authored_validation_documents(config)
    if valid_docs:
        boost = choose_framing_term_boost(TransformerEngine(model, tokenizer, meta), valid_docs, standard)
        meta["framing_term_boost"] = boost["chosen"]
        metrics["framing_term_boost"] = boost
        say(f"framing: attached lexicon terms boosted x{boost['chosen']} (authored validation macro-F1 "
            + ", ".join(f"x{k} {v:.3f}" for k, v in boost["macro_f1_by_boost"].items()) + ")")
    save_model(out, model, tokenizer, meta, config, hashes, metrics)
    say(f"saved {out} in {minutes:.1f} min")
    record_seed_gold(out, metrics, say)
    return metrics


def data_card(metrics: dict, hashes: dict) -> str:
    """The model's data card: what it was trained on (rows per origin, file hashes), added files with their
    licence note, and the model it continued from."""
    lines = [f"# Data card: {metrics['model']['name']} {metrics['model']['version']}", "",
             "Training rows per origin: " + ", ".join(f"{k} {v}" for k, v in metrics.get("data", {}).items()) + ".", "",
             "| file | sha256 |", "|---|---|", *(f"| {k} | {v} |" for k, v in hashes.items()), ""]
    if metrics.get("licence_note"):
        lines += [f"Licence: {metrics['licence_note']}", ""]
    if metrics.get("init_from"):
        start = metrics["init_from"]
        lines += [f"Continued from {start['path']} ({start.get('name')} {start.get('version')}, hash {start.get('hash')}).", ""]
    if metrics.get("added"):
        lines += ["## Added annotations (`train --add`)", "", "| file | sha256 | documents | sentences | pairs | licence |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {a['path']} | {a['sha256'][:16]} | {a['documents']} | {a['sentences']} | {a['pairs']} | "
                  f"{a['licence_note']} |" for a in metrics["added"]]
        lines.append("")
    return "\n".join(lines)


def init_record(config: TrainingConfig) -> dict | None:
    """Which model a fine-tune continued from (name, version, hash), for metrics.json."""
    if not config.init_from:
        return None
    meta = json.loads((Path(config.init_from) / "stancelens.json").read_text(encoding="utf-8"))
    return {"path": config.init_from, **{k: meta.get(k) for k in ("name", "version", "hash")}}


def seed_gold_figures(model_dir: Path) -> dict | None:
    """Figures on the seed gold, computed after the model is saved and never fed back into training."""
    gold = labels_dir() / "gold" / "seeds.jsonl"
    if not gold.exists():
        return None

    report = evaluate_predictor(load_predictor(model_dir), list(read_annotations(gold)))
    return {k: v for k, v in report["summary"].items() if v is not None}


def _macro_f1(pred: torch.Tensor, gold: torch.Tensor, n: int) -> float:
    from sklearn.metrics import f1_score

    present = sorted(set(gold.tolist()) | set(pred.tolist()))
    return float(f1_score(gold.tolist(), pred.tolist(), labels=present, average="macro", zero_division=0))


def _flat_macro(results: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for origin, r in results.items():
        for task in ("stance", "framing", "dse"):
            if task in r:
                out[f"{origin}.{task}"] = r[task]
    return out


def save_model(out: Path, model: HeadedEncoder, tokenizer, meta: dict, config: TrainingConfig,
               hashes: dict, metrics: dict) -> None:
    """Write the whole directory beside `out`, then swap it in: a reader never sees half a model."""
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.encoder.config.update({
            "stancelens_stance_id2label": meta["stance_id2label"],
            "stancelens_framing_id2label": meta["framing_id2label"],
        })
        model.encoder.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        heads = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("encoder.")}
        save_file(heads, str(tmp / "heads.safetensors"))
        shutil.copytree(labels_dir(), tmp / "labels", ignore=shutil.ignore_patterns(
            "__pycache__", "*.py", "train", "gold", "label-studio", "relabelled", "domains", "resolution"))
        (tmp / "training_config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
        (tmp / "data_hashes.json").write_text(json.dumps(hashes, indent=2), encoding="utf-8")
        meta["hash"] = directory_hash(tmp)
        (tmp / "stancelens.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        metrics = {"model": {"name": meta["name"], "version": meta["version"], "hash": meta["hash"]}, **metrics}
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float), encoding="utf-8")
        (tmp / "DATA.md").write_text(data_card(metrics, hashes), encoding="utf-8")
        if config.added_actors:  # the ids of the added annotations travel with the model
            (tmp / "labels" / "actor_sets").mkdir(exist_ok=True)
            shutil.copy2(config.added_actors, tmp / "labels" / "actor_sets" / Path(config.added_actors).name)
        replace_directory(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
