"""On-demand attention on a device (issue 13, CUDA): where the kept queries and keys live, what a view costs, and
what it copies to the host, side by side on each device asked for.

    python -m bench.device_attention --device cuda cpu [--tokens 1024 4096] [--json out.json]
    python -m bench.device_attention --render out.json --write    # docs/performance-gpu.md from a saved run

The model is Gemma-3-270M (18 layers, 4 query heads sharing 1 key/value head, head dim 256, sliding window 512 on
15 of them): its converted embedded weights where they are here, else random weights of its config (a GPU machine
that cannot download them). Times and sizes depend on the shapes only, and the equality check holds for any weights.
Each device runs the service's dtype (float32 on CPU, bfloat16 on CUDA, as `dtype_for`), and float32 once more
for the check that the kept-queries-and-keys attention equals the model's own (an eager pass, max diff).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from bench.table import format_value

# Gemma-3-270M's config.json as converted (service/models/embedded.py), what shapes the kept queries and keys
GEMMA_270M = {
    "vocab_size": 262144, "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18,
    "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "query_pre_attn_scalar": 256,
    "sliding_window": 512, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
    "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 3,
    "rope_parameters": {"full_attention": {"rope_theta": 1e6, "rope_type": "default"},
                        "sliding_attention": {"rope_theta": 1e4, "rope_type": "default"}},
    "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0, "tie_word_embeddings": True,
}
CHECKED_TOKENS = 1024        # the equality check holds whole eager matrices: 302 MB at 1,024 tokens, 4.8 GB at 4,096
SWITCHES = 8                 # layer switches timed (each a layer not computed before)


def gemma_270m(device: str, dtype: torch.dtype) -> tuple[Any, str]:
    """(model, "embedded" | "random"): the converted weights where present, else the same config, seeded."""
    import transformers as tf

    from service.models.embedded import converted_model_dir, verify_cache
    from service.models.loading import set_attention_kernel

    directory = converted_model_dir()
    if verify_cache(directory) is not None:
        model = tf.AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, use_safetensors=True)
        weights = "embedded"
    else:
        torch.manual_seed(0)
        config = tf.Gemma3TextConfig(**GEMMA_270M)
        model = tf.Gemma3ForCausalLM._from_config(config, attn_implementation="sdpa")
        weights = "random"
    model = model.to(device=device, dtype=dtype).eval()
    set_attention_kernel(model, "sdpa")
    return model, weights


def prompt_ids(tokens: int, vocab: int, device: str) -> torch.Tensor:
    """(1, tokens) seeded token ids after <bos>: the same prompt on every device."""
    generator = torch.Generator().manual_seed(tokens)
    ids = torch.randint(4, vocab, (1, tokens), generator=generator)
    ids[0, 0] = GEMMA_270M["bos_token_id"]
    return ids.to(device)


def timed(device: str, function: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, value), waiting for the device's queued work before and after."""
    synchronise(device)
    started = time.perf_counter()
    value = function()
    synchronise(device)
    return time.perf_counter() - started, value


def synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def allocated(device: str) -> int:
    return torch.cuda.memory_allocated() if device.startswith("cuda") else 0


def measure_views(model: Any, device: str, tokens: int) -> dict[str, Any]:
    """One result kept as queries and keys over `tokens`, then the views a user opens on it."""
    from service.attention.on_demand import keep_queries_keys

    ids = prompt_ids(tokens, model.config.vocab_size, device)
    keep_queries_keys(model, ids[:, :64])                                # warm the kernels
    before = allocated(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    keep_seconds, attention = timed(device, lambda: keep_queries_keys(model, ids))
    layers, heads, _, _ = attention.shape
    row = {
        "tokens": tokens, "keep_seconds": keep_seconds, "kept_bytes": attention.nbytes,
        "whole_matrices_bytes": layers * heads * tokens * tokens * 4,
        "kept_on": str(attention.queries[0].device),
        "device_bytes_held": allocated(device) - before,
        "device_peak_bytes": (torch.cuda.max_memory_allocated() - before) if device.startswith("cuda") else 0,
    }
    first, layer = timed(device, lambda: attention.layer(0))
    row["first_view_seconds"], row["layer_view_bytes_copied"] = first, layer.nbytes
    switches = [timed(device, lambda index=index: attention.layer(index))[0]
                for index in range(1, min(layers, SWITCHES + 1))]
    row["layer_switch_seconds"] = statistics.median(switches)
    focus, rows = timed(device, lambda: attention[:, :, [tokens - 1], :])   # the answer's focus: one row, every layer
    row["one_row_view_seconds"], row["one_row_bytes_copied"] = focus, rows.nbytes
    summary, _ = timed(device, lambda: attention.per_layer(("bench", "entropy"), _head_entropy))
    row["whole_model_view_seconds"] = summary                          # every layer once: head summary / overview
    row["whole_model_bytes_copied"] = layers * layer.nbytes
    return row


def check_equal(model: Any, device: str, tokens: int) -> dict[str, Any]:
    """Max |kept-queries-and-keys attention − the model's eager attention| over every layer and head."""
    from service.attention.capture import decoder_attention
    from service.attention.on_demand import keep_queries_keys

    ids = prompt_ids(tokens, model.config.vocab_size, device)
    with torch.inference_mode():
        eager = decoder_attention(model, ids)                            # (layer, head, T, T), float32 on the host
        kept = keep_queries_keys(model, ids)
        difference = max(float(np.abs(kept.layer(layer) - eager[layer]).max()) for layer in range(len(eager)))
    return {"tokens": tokens, "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
            "max_abs_difference": difference}


def _head_entropy(layer: np.ndarray) -> np.ndarray:
    """(H, N, N) → (H,): mean row entropy, the kind of reduction the head summary makes."""
    return -(layer * np.log(np.clip(layer, 1e-12, None))).sum(-1).mean(-1)


def run(devices: list[str], token_counts: list[int], log: Callable[[str], None]) -> dict[str, Any]:
    from service.models.loading import dtype_for, resolve_device

    import transformers

    report: dict[str, Any] = {"taken": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "torch": torch.__version__, "transformers": transformers.__version__, "devices": {}}
    for name in devices:
        device = resolve_device(name)
        threads = f"CPU, {torch.get_num_threads()} threads"
        label = torch.cuda.get_device_name(0) if device.startswith("cuda") else threads
        entry: dict[str, Any] = {"device": label, "checks": [], "views": []}
        log(f"{device}: the float32 equality check at {CHECKED_TOKENS} tokens")
        model, entry["weights"] = gemma_270m(device, torch.float32)
        entry["checks"].append(check_equal(model, device, CHECKED_TOKENS))
        dtype = dtype_for(device)
        if dtype != torch.float32:
            model = model.to(dtype)
            entry["checks"].append(check_equal(model, device, CHECKED_TOKENS))
        for tokens in token_counts:
            log(f"{device}: views of a {tokens}-token result ({str(dtype).replace('torch.', '')})")
            entry["views"].append(measure_views(model, device, tokens))
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        report["devices"][device] = entry
    return report


def reading(report: dict[str, Any]) -> list[str]:
    """What the tables say, computed: the keeping pass on the GPU against the CPU, per token count."""
    devices = report["devices"]
    gpu = next((entry for name, entry in devices.items() if name.startswith("cuda")), None)
    cpu = devices.get("cpu")
    if gpu is None or cpu is None:
        return []
    pairs = [(mine, theirs) for mine in gpu["views"] for theirs in cpu["views"] if mine["tokens"] == theirs["tokens"]]
    faster = ", ".join(f"{theirs['keep_seconds'] / mine['keep_seconds']:.0f}× at {mine['tokens']:,} tokens"
                       for mine, theirs in pairs)
    return [f"- The pass that keeps the queries and keys runs faster on the GPU than on the same machine's CPU "
            f"({faster}); a view costs about the same on both, since it hands the host one whole layer, and a "
            "whole-model view reduces every layer there with numpy."]


DOCUMENT = "docs/performance-gpu.md"
HEADER = """# On-demand attention on a GPU

What a long result costs where the model runs on a GPU (`--device cuda`, bfloat16) beside its CPU, measured by
`python -m bench.device_attention` (issue 13). Generated: edit bench/device_attention.py, not this file.

- The result keeps each layer's queries and keys where the model runs, and a view computes the layer or rows it
  shows there and copies only those to the host; whole-model views (overview, head summary, rollout) read every
  layer once and cache their reductions, which numpy computes on the host.
- Gemma-3-270M's shapes (18 layers, 4 query heads sharing 1 key/value head, head dim 256, window 512): random
  weights where its converted weights were not on the machine (a GPU machine that cannot download them; time and
  memory depend on the shapes, and the equality holds for any weights).
- Equality: float32 is the exact check (the issue's 1e-5). In bfloat16 both sides round (the eager pass returns
  bfloat16 weights, ~3 significant digits), so they agree to ~2e-2.
- The figure JSON a view sends is built on the host from the same arrays, as on a CPU: see docs/performance.md.
- Sizes in decimal units (1 MB = 10⁶ B).
"""


def render(report: dict[str, Any]) -> str:
    """A markdown table per device, one column per token count."""
    lines = [HEADER, f"- Taken {report.get('taken', '?')}; torch {report['torch']}, "
                     f"transformers {report.get('transformers', '?')}.", *reading(report)]
    for device, entry in report["devices"].items():
        lines += ["", f"### {device}: {entry['device']} (weights: {entry['weights']})", ""]
        lines += [f"- equality with the model's eager attention, {check['tokens']} tokens, {check['dtype']}: "
                  f"max |diff| {check['max_abs_difference']:.2e}" for check in entry["checks"]]
        views = entry["views"]
        lines += ["", "| | " + " | ".join(f"{view['tokens']:,} tokens" for view in views) + " |",
                  "|---|" + "---|" * len(views)]
        for key, unit, text in (
            ("kept_bytes", "B", "kept queries and keys"), ("whole_matrices_bytes", "B", "whole matrices would be"),
            ("kept_on", "", "kept on"), ("device_bytes_held", "B", "device memory held by the result"),
            ("device_peak_bytes", "B", "device memory peak while keeping"),
            ("keep_seconds", "s", "the pass that keeps them"), ("first_view_seconds", "s", "first view (layer 0)"),
            ("layer_switch_seconds", "s", "layer switch (median)"),
            ("layer_view_bytes_copied", "B", "a layer view's arrays (copied to the host on a GPU)"),
            ("one_row_view_seconds", "s", "one query row, every layer"),
            ("one_row_bytes_copied", "B", "its arrays"),
            ("whole_model_view_seconds", "s", "a whole-model reduction (every layer once)"),
        ):
            cells = [view[key] if unit == "" else format_value(view[key], unit) for view in views]
            lines.append(f"| {text} | " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", nargs="+", default=["cuda", "cpu"], choices=("cpu", "cuda", "auto"))
    parser.add_argument("--tokens", nargs="+", type=int, default=[1024, 4096])
    parser.add_argument("--json", help="also write the measurements here")
    parser.add_argument("--render", metavar="JSON", help="render a saved run (from a GPU machine) instead of measuring")
    parser.add_argument("--write", action="store_true", help=f"write the tables to {DOCUMENT}")
    arguments = parser.parse_args(argv)
    if arguments.render:
        with open(arguments.render, encoding="utf-8") as handle:
            report = json.load(handle)
    else:
        report = run(arguments.device, arguments.tokens, lambda message: print(message, file=sys.stderr, flush=True))
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    document = render(report) + "\n"
    if arguments.write:
        with open(DOCUMENT, "w", encoding="utf-8") as handle:
            handle.write(document)
    print(document, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
