"""Linear layers for a decoding step of a few rows, in the matrix layout MKL runs fast on this CPU.

A batched decoding step feeds 2–16 rows through every linear layer: `F.linear(hidden, W)`, W (out, in). MKL's
sgemm for that layout (rows × in times W transposed) is slow for a few rows on the AMD EPYC CPUs measured here:
Gemma's 262,144 × 640 output layer takes 122 ms for 4 rows and 126 ms for 16, against 47 ms for one row. The same
product taken as W times hidden transposed (`W @ hidden.T`, then laid out by row again) takes 29 ms for 4 rows and
85 ms for 16; a layer's 2048 × 640 projections gain 1.5–2×. The sums are the same, in another order, so the outputs
differ from F.linear's by float32 rounding only (~2e-6 of their size). A 4-row step of Gemma-3-270M: 220 ms with
F.linear, 146 ms with this layout on the output layer alone, ~105 ms on every linear layer. A join's prefill of
one or two Ask queries (40–128 rows) gains too: a layer's projections take 20–35% less, a one-query join 0.31 →
0.20 s.

Use it only where the model's lock is held (the swap is on the modules, seen by every thread), around one forward.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch

FEW_ROWS = 128                      # above this many rows F.linear is as fast (measured: equal at ~200)
# Row counts that are not a multiple of 8 run MKL's slow edge kernels: the output layer takes 167 ms for 15 rows,
# 102 ms for the same 15 padded with zero rows to 16 (and 106 → 57 ms for 7 → 8). Up to this many rows the edge is
# cheap (33–50 ms for 2–5 rows), so they run as they are.
UNPADDED_ROWS = 5
ROW_MULTIPLE = 8


@contextmanager
def few_row_linears(model: Any) -> Iterator[None]:
    """While the block runs, every bias-free nn.Linear of `model` on the CPU computes inputs of at most FEW_ROWS
    rows as W @ hidden.T; more rows, and every other module (and every GPU one: not measured there), run as before."""
    swapped = [module for module in model.modules()
               if type(module) is torch.nn.Linear and module.bias is None and module.weight.device.type == "cpu"
               and "forward" not in vars(module)]
    for module in swapped:
        module.forward = _few_row_forward(module.weight)
    try:
        yield
    finally:
        for module in swapped:
            del module.forward


def _few_row_forward(weight: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(hidden: torch.Tensor) -> torch.Tensor:                             # (..., in)
        flat = hidden.reshape(-1, hidden.shape[-1])                                # (rows, in)
        if flat.shape[0] > FEW_ROWS or flat.dtype != weight.dtype:
            return torch.nn.functional.linear(hidden, weight)
        rows = flat.shape[0]
        padded = rows if rows <= UNPADDED_ROWS else -(-rows // ROW_MULTIPLE) * ROW_MULTIPLE
        if padded > rows:                                                          # zero rows, cut off again
            flat = torch.cat([flat, flat.new_zeros((padded - rows, flat.shape[1]))])  # (padded, in)
        out = torch.mm(weight, flat.t())[:, :rows].t().contiguous()                # (rows, out)
        return out.reshape(*hidden.shape[:-1], weight.shape[0])                    # (..., out)

    return forward
