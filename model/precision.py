"""Which numeric precisions the encoder can run in, and which one this machine's fast path uses.

Kept free of torch so that settings and the CLI can validate a backend name without loading a model."""

from __future__ import annotations

from pathlib import Path

# Reduced-precision encoders behind `quantize=True` (TransformerEngine.load): torch dynamic int8,
# ONNX Runtime int8, bf16 autocast.
BACKENDS = ("torch", "onnx", "bf16")


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """AMX or AVX512-BF16 units. There bf16 matmuls run well over fp32's rate (measured on this 2-core
    Xeon: training steps 577 → 328 ms; `stancelens bench` fast path 228 → 361 sentences/s with
    batch-independent call shapes); elsewhere bf16 is emulated and slower than fp32."""
    try:
        flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})


# The backend of the fast path (`load_predictor(fast=True)`), by `stancelens bench` on this 2-core Xeon:
# where the CPU has bf16 units, bf16 (1.6x fp32, holds the accuracy bounds); elsewhere ONNX Runtime
# per-channel int8, faster than torch dynamic int8 and closer to fp32.
FAST_BACKEND = "bf16" if cpu_has_native_bf16() else "onnx"


def backend_choices() -> str:
    """'bf16, onnx or torch': the backends for an error message."""
    names = sorted(BACKENDS)
    return ", ".join(names[:-1]) + " or " + names[-1]
