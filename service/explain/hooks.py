"""Forward hooks on one layer, placed by the family adapter: what the Explain recompute starts from and checks."""

from __future__ import annotations

from typing import Any

import torch

from service.families import FamilyAdapter

# name → what the hook keeps (each (1, T, D), batch first, as the model passes it)
CAPTURED = ("layer0_input", "layer_input", "attention_input", "attention_output", "block_output")


class LayerHooks:
    """What enters and leaves layer `layer`: the recompute starts from these tensors and is checked against them.

    tensors["layer0_input"]      (1, T, D)  entering layer 0 (the embeddings as the model computed them)
    tensors["layer_input"]       (1, T, D)  the residual stream entering layer `layer`
    tensors["attention_input"]   (1, T, D)  X, what the attention module reads
    tensors["position_embeddings"]  ((1, T, d), (1, T, d))  RoPE's (cos, sin), when the model passes them
    tensors["attention_output"]  (1, T, D)  the output projection's result (W_O)
    tensors["block_output"]      (1, T, D)  after the residual add and norm that follow attention
    """

    def __init__(self, adapter: FamilyAdapter, model: Any, layer: int) -> None:
        self.tensors: dict[str, Any] = {}
        self._handles: list[Any] = []
        layers = adapter.layers(model)
        self._pre(layers[0], "layer0_input")
        self._pre(layers[layer], "layer_input")
        self._pre(adapter.self_attention(model, layer), "attention_input", keep_kwargs=True)
        self._post(adapter.output_projection(model, layer), "attention_output")
        module, when = adapter.after_attention_tap(model, layer)
        (self._pre if when == "pre" else self._post)(module, "block_output")

    def missing(self) -> set[str]:
        return set(CAPTURED) - set(self.tensors)

    def _pre(self, module: torch.nn.Module, name: str, keep_kwargs: bool = False) -> None:
        def hook(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            hidden = args[0] if args else kwargs.get("hidden_states")
            self.tensors[name] = hidden.detach()
            if keep_kwargs and kwargs.get("position_embeddings") is not None:
                self.tensors["position_embeddings"] = tuple(t.detach() for t in kwargs["position_embeddings"])

        self._handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def _post(self, module: torch.nn.Module, name: str) -> None:
        def hook(_module: torch.nn.Module, _args: tuple, output: Any) -> None:
            self.tensors[name] = (output[0] if isinstance(output, tuple) else output).detach()

        self._handles.append(module.register_forward_hook(hook))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

