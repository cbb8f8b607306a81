"""The output layer for a decoding step of a few rows, in the matrix layout MKL runs fast on this CPU.

A decoding step of a batch computes logits for 2–16 rows: `F.linear(hidden, W)` with W the (vocab, hidden) output
layer (Gemma's is its 262,144 × 640 embedding). MKL's sgemm for that layout (rows × hidden times W transposed) is
slow for a few rows on the AMD EPYC CPUs measured here: 122 ms for 4 rows, 126 ms for 16, against 47 ms for one
row. The same product taken as W times hidden transposed (`W @ hidden.T`, then transposed back) is 29 ms for 4 rows
and 85 ms for 16 (plus ~1 ms to lay the logits out by row): the same sums in another order, so the logits differ from F.linear's by float32 rounding only
(~2e-6 of their size). The decoding step is then bound by the weights it reads, as it should be.

Use it only where the model's lock is held (the swap is on the module, seen by every thread), around one forward.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

FEW_ROWS = 32                       # above this many rows F.linear is as fast (measured: equal at ~150)


@contextmanager
def output_layer_for_few_rows(model: Any) -> Iterator[None]:
    """While the block runs, the model's output layer (a bias-free nn.Linear) computes few-row logits as
    W @ hidden.T; more rows, or any other head, run as before."""
    head = getattr(model, "get_output_embeddings", lambda: None)()
    if type(head) is not torch.nn.Linear or head.bias is not None or "forward" in vars(head):
        yield
        return
    weight = head.weight                                                           # (vocab, hidden)

    def forward(hidden: torch.Tensor) -> torch.Tensor:                             # (..., hidden)
        flat = hidden.reshape(-1, hidden.shape[-1])                                # (rows, hidden)
        if flat.shape[0] > FEW_ROWS or flat.dtype != weight.dtype:
            return torch.nn.functional.linear(hidden, weight)
        logits = torch.mm(weight, flat.t()).t().contiguous()                       # (rows, vocab)
        return logits.reshape(*hidden.shape[:-1], weight.shape[0])                 # (..., vocab)

    head.forward = forward
    try:
        yield
    finally:
        del head.forward
