"""The encoder as an ONNX Runtime int8 graph: one of the reduced-precision backends of `TransformerEngine`.

Only the encoder is exported (input ids and attention mask in, last hidden states out); the pooling
and the two small heads stay in torch, so every backend shares every line after the encoder.
Quantisation is dynamic and per-channel with 7-bit weights (`reduce_range`, which keeps ORT's u8s8
kernels from saturating on CPUs without VNNI), and the first transformer layer, which reads the raw
embeddings and marker tokens, stays fp32 (`RECIPE`). Recipes tried and their agreement with fp32 are
in docs/measurements.md.

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
# Bumped whenever the quantisation below changes, so cached graphs of an older recipe are rebuilt.
RECIPE = "per-channel,reduce-range,layer0-fp32"
FP32_LAYERS = ("/layer.0/",)


def fp32_nodes(graph_path: Path) -> list[str]:
    """MatMul nodes left in fp32: those of the layers named in FP32_LAYERS."""
    import onnx

    graph = onnx.load(str(graph_path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and any(k in n.name for k in FP32_LAYERS)]


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
        if meta.get("source_hash") == source_hash and meta.get("opset") == OPSET and meta.get("recipe") == RECIPE:
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
        keep = fp32_nodes(fp32)
        if not keep:
            raise RuntimeError(f"ONNX export of {directory}: expected MatMul nodes named like {FP32_LAYERS[0]!r}, "
                               "found none; the exporter's node names changed, update FP32_LAYERS")
        quantize_dynamic(str(fp32), str(int8), per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                         nodes_to_exclude=keep)
        _replace_atomically(int8, target)
    import onnxruntime

    tmp_meta = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.tmp")
    tmp_meta.write_text(json.dumps({"source_hash": source_hash, "opset": OPSET, "recipe": RECIPE, "fp32_nodes": len(keep),
                                    "onnxruntime": onnxruntime.__version__}, indent=2), encoding="utf-8")
    _replace_atomically(tmp_meta, meta_path)
    return target


class OnnxEncoder:
    """Runs the cached int8 graph; called like `HeadedEncoder.encode` and returns a torch tensor.

    Each sequence runs on its own, cut to its true length. Dynamic quantisation picks one activation
    scale per tensor, so in a padded batch a sentence's int8 codes would depend on the other sentences
    and on the padding: the same sentence could get other probabilities in another batch (a service
    micro-batch, a scoring batch). One sequence per run makes the fast path give the same answers in a
    batch as alone, at little cost here (no padding to compute; see `stancelens bench`)."""

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
        ids, mask = input_ids.numpy(), attention_mask.numpy()
        lengths = mask.sum(axis=1)
        out: torch.Tensor | None = None
        for row, length in enumerate(lengths.tolist()):
            (hidden,) = self.session.run(
                ["last_hidden_state"], {"input_ids": ids[row : row + 1, :length], "attention_mask": mask[row : row + 1, :length]}
            )
            if out is None:
                out = torch.zeros((ids.shape[0], ids.shape[1], hidden.shape[-1]), dtype=torch.float32)
            out[row, :length] = torch.from_numpy(hidden[0])
        assert out is not None
        return out
