"""What this machine's CPU can do, as far as choosing a precision goes."""

from __future__ import annotations

from pathlib import Path


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """AMX or AVX512-BF16 units. There bf16 matmuls run well over fp32's rate (measured on this 2-core
    Xeon: training steps 577 → 328 ms, inference 160 → 390 sentences/s); elsewhere bf16 is emulated and
    slower than fp32."""
    try:
        flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})
