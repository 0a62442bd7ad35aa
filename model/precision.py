"""Which numeric precisions the encoder can run in, and which one this machine's fast path uses.

Kept free of torch so that settings and the CLI can validate a backend name without loading a model."""

from __future__ import annotations

from pathlib import Path

# Reduced-precision encoder backends (`TransformerEngine.load(backend=…)`): torch dynamic int8,
# ONNX Runtime int8, bf16 autocast.
BACKENDS = ("torch", "onnx", "bf16")


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """AMX or AVX512-BF16 units: there bf16 matmuls run well over fp32's rate; elsewhere bf16 is emulated
    and slower than fp32 (docs/measurements.md)."""
    try:
        flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})


# The backend of the fast path (`load_predictor(fast=True)`), chosen with `stancelens bench`: where the CPU
# has bf16 units, bf16 (faster than fp32 and within the accuracy bounds); elsewhere ONNX Runtime
# per-channel int8, faster than torch dynamic int8 and closer to fp32.
FAST_BACKEND = "bf16" if cpu_has_native_bf16() else "onnx"


def backend_choices() -> str:
    """'bf16, onnx or torch': the backends for an error message."""
    names = sorted(BACKENDS)
    return ", ".join(names[:-1]) + " or " + names[-1]
