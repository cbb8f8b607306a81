"""The few-row output layer: the same logits as the model's own head (float32 rounding), and only inside its block."""

import pytest
import torch

from service.tasks.few_rows import FEW_ROWS, output_layer_for_few_rows


class TinyLM(torch.nn.Module):
    def __init__(self, bias: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lm_head = torch.nn.Linear(64, 5000, bias=bias)

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.lm_head


@pytest.mark.parametrize("rows", [1, 3, 16, FEW_ROWS + 1])
def test_logits_equal_the_heads_own_for_any_row_count(rows: int) -> None:
    model = TinyLM()
    hidden = torch.randn(rows, 1, 64)                                              # (rows, 1, hidden)
    expected = model.lm_head(hidden)                                               # (rows, 1, vocab)
    with output_layer_for_few_rows(model):
        swapped = "forward" in vars(model.lm_head)
        logits = model.lm_head(hidden)
    assert swapped and logits.shape == expected.shape and logits.is_contiguous()
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    assert "forward" not in vars(model.lm_head)                                    # the head is itself again


def test_the_head_is_restored_when_the_forward_fails() -> None:
    model = TinyLM()
    with pytest.raises(RuntimeError):
        with output_layer_for_few_rows(model):
            raise RuntimeError("a step failed")
    assert "forward" not in vars(model.lm_head)


def test_a_head_with_a_bias_or_no_head_runs_as_before() -> None:
    model = TinyLM(bias=True)
    with output_layer_for_few_rows(model):
        assert "forward" not in vars(model.lm_head)
    with output_layer_for_few_rows(torch.nn.Module()):
        pass
