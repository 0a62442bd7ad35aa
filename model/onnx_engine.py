"""The encoder as an ONNX Runtime int8 graph: the fast path of `TransformerEngine`.

Only the encoder is exported (input ids and attention mask in, last hidden states out); the pooling
and the two small heads stay in torch, so the fp32 and int8 engines share every line after the
encoder. Quantisation is dynamic and **per-channel**: per-tensor int8 moved the pooled sentence
vectors of this encoder too far from fp32 (cosine as low as 0.87, against 0.99 per-channel).

The quantised graph is built once and cached as ``<model>/onnx/encoder-int8.onnx`` beside a small
``encoder-int8.json`` recording the hash of the weights it came from; a model directory that cannot be
written (read-only install) caches under ``$STANCELENS_CACHE`` (default ``~/.cache/stancelens``)
instead. Both files are written atomically, so a crash or a second process never leaves half a graph.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

ONNX_NAME = "encoder-int8.onnx"
OPSET = 17


def weights_hash(directory: Path) -> str:
    """sha256 of the encoder weights and config: what the exported graph depends on."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        path = Path(directory) / name
        if path.exists():
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-", delete=True)
        probe.close()
        return True
    except OSError:
        return False


def cache_folder(directory: Path, source_hash: str) -> Path:
    """`<model>/onnx` when it can be written, else a per-hash folder in the user cache."""
    inside = Path(directory) / "onnx"
    if _writable(inside):
        return inside
    base = Path(os.environ.get("STANCELENS_CACHE") or Path.home() / ".cache" / "stancelens")
    return base / "onnx" / source_hash


class _EncoderOnly(nn.Module):
    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _replace_atomically(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)
    try:  # the rename must reach the disk before the metadata that vouches for it
        fd = os.open(final.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass


def export_int8(encoder: nn.Module, directory: Path, say=log.info) -> Path:
    """Export the encoder to ONNX (legacy exporter, opset 17), quantise it dynamically per channel to
    int8, and cache it; return the cached graph, reusing it when the weights have not changed."""
    source_hash = weights_hash(directory)
    folder = cache_folder(directory, source_hash)
    target = folder / ONNX_NAME
    meta_path = folder / ONNX_NAME.replace(".onnx", ".json")
    if target.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        if meta.get("source_hash") == source_hash and meta.get("opset") == OPSET:
            return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    say(f"exporting the encoder of {directory} to ONNX int8 (once; cached in {folder})")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as work:
        fp32 = Path(work) / "encoder-fp32.onnx"
        int8 = Path(work) / ONNX_NAME
        wrapper = _EncoderOnly(encoder).eval()
        # A padded batch of two, so the traced graph is the general masked one and not a shortcut
        # for an all-ones mask.
        example = (torch.tensor([[101, 2000, 2001, 2002, 102], [101, 2000, 102, 0, 0]]),
                   torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]))
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                wrapper, example, str(fp32), dynamo=False, opset_version=OPSET,
                input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                              "last_hidden_state": {0: "batch", 1: "sequence"}},
            )
        quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)
        _replace_atomically(int8, target)
    import onnxruntime

    tmp_meta = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.tmp")
    tmp_meta.write_text(json.dumps({"source_hash": source_hash, "opset": OPSET, "per_channel": True,
                                    "onnxruntime": onnxruntime.__version__}, indent=2), encoding="utf-8")
    _replace_atomically(tmp_meta, meta_path)
    return target


class OnnxEncoder:
    """Runs the cached int8 graph; called like `HeadedEncoder.encode` and returns a torch tensor."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        threads = threads or torch.get_num_threads()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        (hidden,) = self.session.run(
            ["last_hidden_state"], {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        )
        return torch.from_numpy(hidden)
