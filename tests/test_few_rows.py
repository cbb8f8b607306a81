"""Few-row linear layers: the same outputs as each layer's own (float32 rounding), and only inside the block."""

import pytest
import torch

from service.tasks.few_rows import FEW_ROWS, few_row_linears


class TinyLM(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.up = torch.nn.Linear(64, 256, bias=False)
        self.shift = torch.nn.Linear(256, 64, bias=True)
        self.lm_head = torch.nn.Linear(64, 5000, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.shift(torch.relu(self.up(hidden))))


def _swapped(model: torch.nn.Module) -> set[str]:
    return {name for name, module in model.named_modules() if "forward" in vars(module)}


@pytest.mark.parametrize("rows", [1, 3, 7, 15, 16, FEW_ROWS + 1])  # 7, 15: padded to 8, 16
def test_outputs_equal_the_layers_own_for_any_row_count(rows: int) -> None:
    model = TinyLM()
    hidden = torch.randn(rows, 1, 64)                                              # (rows, 1, hidden)
    expected = model(hidden)                                                       # (rows, 1, vocab)
    with few_row_linears(model):
        swapped = _swapped(model)
        logits = model(hidden)
    assert swapped == {"up", "lm_head"}                                            # the biased layer runs as before
    assert logits.shape == expected.shape and logits.is_contiguous()
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    assert _swapped(model) == set()                                                # every layer is itself again


def test_the_layers_are_restored_when_the_forward_fails() -> None:
    model = TinyLM()
    with pytest.raises(RuntimeError):
        with few_row_linears(model):
            raise RuntimeError("a step failed")
    assert _swapped(model) == set()
