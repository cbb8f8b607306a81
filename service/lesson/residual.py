"""One forward pass of the generation model with hooks: how each sublayer changes the residual stream, the model's
own attention, and its logits for the next token.

Per layer ℓ the block reads h_in (T, D), the attention sublayer adds its output (h_mid: what the family's
after_attention_tap sees, after the residual add and any norm the family puts there), the feed-forward sublayer
adds its own (h_out, which is the next layer's h_in). The relative change of a sublayer is
||h_after − h_before|| / ||h_before||, per token, then averaged over tokens.
The caller holds the model's lock and inference mode (the kernel switch to eager changes the shared model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from service.attention.capture import eager_attention, stack_attention
from service.families import adapter_for


@dataclass
class ResidualPass:
    """What one hooked forward pass gives (numpy float32).

    layer_inputs       (L, T, D)  h_in of every layer (layer 0's is what adapter.embed computes)
    after_attention    (L, T, D)  h_mid: right after each attention sublayer (residual add and norm included)
    layer_outputs      (L, T, D)  h_out: each block's output (the last one before the final norm)
    attention          (L, H, T, T) the model's own attention weights
    next_token_logits  (V,)       the model's logits at the last position
    """

    layer_inputs: np.ndarray
    after_attention: np.ndarray
    layer_outputs: np.ndarray
    attention: np.ndarray
    next_token_logits: np.ndarray

    @property
    def attention_change(self) -> np.ndarray:
        """(L,) mean over tokens of ||h_mid − h_in|| / ||h_in||."""
        return relative_change(self.layer_inputs, self.after_attention)

    @property
    def ffn_change(self) -> np.ndarray:
        """(L,) mean over tokens of ||h_out − h_mid|| / ||h_mid||."""
        return relative_change(self.after_attention, self.layer_outputs)

    @property
    def residual_norms(self) -> np.ndarray:
        """(L + 1,) mean ||h|| over tokens entering each layer, then after the last."""
        entering = np.linalg.norm(self.layer_inputs, axis=-1).mean(axis=-1)   # (L,)
        leaving = np.linalg.norm(self.layer_outputs[-1], axis=-1).mean()      # ()
        return np.append(entering, leaving).astype(np.float32)                # (L + 1,)


def relative_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(L, T, D), (L, T, D) → (L,): mean over tokens of ||after − before|| / ||before||."""
    change = np.linalg.norm(after - before, axis=-1)                          # (L, T)
    size = np.maximum(np.linalg.norm(before, axis=-1), 1e-12)                 # (L, T)
    return (change / size).mean(axis=-1).astype(np.float32)                   # (L,)


def residual_pass(model: Any, token_ids: list[int]) -> ResidualPass:
    """Run `model` once over `token_ids` (a causal LM with its LM head), hooked at every block's input, right after
    every attention sublayer and at every block's output; eager attention, so its weights come back."""
    adapter = adapter_for(model)
    layers = adapter.layers(model)
    inputs: dict[int, torch.Tensor] = {}
    middles: dict[int, torch.Tensor] = {}
    outputs: dict[int, torch.Tensor] = {}
    handles = []
    for index, block in enumerate(layers):
        handles.append(block.register_forward_pre_hook(_keep_input(inputs, index), with_kwargs=True))
        handles.append(block.register_forward_hook(_keep_output(outputs, index)))
        module, when = adapter.after_attention_tap(model, index)
        handles.append(module.register_forward_pre_hook(_keep_input(middles, index), with_kwargs=True)
                       if when == "pre" else module.register_forward_hook(_keep_output(middles, index)))
    try:
        with eager_attention(model):
            result = model(input_ids=torch.tensor([token_ids], device=model.device), **adapter.forward_kwargs(model))
    finally:
        for handle in handles:
            handle.remove()

    def stacked(kept: dict[int, torch.Tensor]) -> np.ndarray:
        return torch.stack([kept[index][0] for index in range(len(layers))]).float().cpu().numpy()  # (L, T, D)

    return ResidualPass(
        layer_inputs=stacked(inputs), after_attention=stacked(middles), layer_outputs=stacked(outputs),
        attention=stack_attention(result.attentions),                          # (L, H, T, T)
        next_token_logits=result.logits[0, -1].float().cpu().numpy(),          # (V,)
    )


def _keep_input(kept: dict[int, torch.Tensor], index: int) -> Any:
    def hook(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        kept[index] = (args[0] if args else kwargs["hidden_states"]).detach()  # (1, T, D)

    return hook


def _keep_output(kept: dict[int, torch.Tensor], index: int) -> Any:
    def hook(_module: torch.nn.Module, _args: tuple, output: Any) -> None:
        kept[index] = (output[0] if isinstance(output, tuple) else output).detach()  # (1, T, D)

    return hook
