"""The bf16 fast path: the fp32 encoder run under bf16 autocast, for CPUs with bf16 units (AMX /
AVX512-BF16, see model/precision.py). Weights stay fp32; matmuls run in bf16 with fp32 accumulation; the
heads, calibration and every probability stay fp32."""

from __future__ import annotations

from collections.abc import Callable

import torch

# Sequences are padded to a multiple of this many tokens, fixed by their own length.
BUCKET = 32
# Every encoder call has this many rows (the last chunk of a width filled with empty rows).
ROWS = 16


class Bf16Encoder:
    """Called like `HeadedEncoder.encode`; returns fp32 hidden states.

    A sentence's answer must not depend on its batch-mates (a service micro-batch, a scoring batch). In
    bf16 it would: the matmul kernels choose their blocking by the input's shape, so the sums round
    differently, and bf16 turns last-bit differences into visible ones. So every call has one shape per
    sentence length: the width is the next multiple of BUCKET above the sentence's own length and the
    row count is always ROWS (empty rows fill the last chunk of a width). Padded positions are masked,
    so their token ids do not matter. The measurements behind ROWS and BUCKET are in docs/measurements.md."""

    def __init__(self, encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], bucket: int = BUCKET,
                 rows: int = ROWS):
        self.encode = encode
        self.bucket = bucket
        self.rows = rows

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch, width = input_ids.shape
        lengths = attention_mask.sum(dim=1)
        widths = ((lengths + self.bucket - 1) // self.bucket) * self.bucket
        out: torch.Tensor | None = None
        for w in sorted(set(widths.tolist())):
            all_rows = (widths == w).nonzero().flatten()
            for start in range(0, len(all_rows), self.rows):
                rows = all_rows[start : start + self.rows]
                ids = torch.zeros((self.rows, w), dtype=input_ids.dtype)
                mask = torch.zeros((self.rows, w), dtype=attention_mask.dtype)
                mask[:, 0] = 1  # empty rows attend to one token: no all-masked softmax
                keep = min(w, width)
                ids[: len(rows), :keep] = input_ids[rows, :keep]
                mask[: len(rows), :keep] = attention_mask[rows, :keep]
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    hidden = self.encode(ids, mask).float()[: len(rows)]
                if out is None:
                    out = torch.zeros((batch, width, hidden.shape[-1]))
                out[rows] = hidden[:, :width] if w >= width else torch.nn.functional.pad(hidden, (0, 0, 0, width - w))
        assert out is not None
        return out
