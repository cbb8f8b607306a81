"""Explain views: five steps with prose, LaTeX and compact figures; truncation labelled; escaping; ✓/✗; no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import plotly.io as pio
import pytest

from viz.explain import (MAX_DIMS, architecture_card_html, block_diagram_svg, block_operations, explain_steps,
                         token_strip_html, verdict)


# What service.families' adapters put in ExplainResult.facts (plain data: the views need no model to read it).
LAYER_NORM = r"\frac{h-\mu}{\sqrt{\sigma^2+\epsilon}}\odot w + b"
FACTS = {
    "gemma3_text": {"name": "Gemma 3", "norm_name": "RMSNorm", "norm_placement": "pre+post (sandwich)",
                    "norm_formula": r"\frac{h}{\sqrt{\overline{h^2}+\epsilon}}\odot(1+w)",
                    "positional": "rope", "segment_embeddings": False, "embedding_norm": False,
                    "uses_qk_norm": True, "fused_qkv": False},
    "gpt2": {"name": "GPT-2", "norm_name": "LayerNorm", "norm_placement": "pre-norm", "norm_formula": LAYER_NORM,
             "positional": "learned", "segment_embeddings": False, "embedding_norm": False, "uses_qk_norm": False,
             "fused_qkv": True},
    "bert": {"name": "BERT / MiniLM", "norm_name": "LayerNorm", "norm_placement": "post-norm",
             "norm_formula": LAYER_NORM, "positional": "learned", "segment_embeddings": True, "embedding_norm": True,
             "uses_qk_norm": False, "fused_qkv": False},
}


def synthetic_result(tokens: int = 64, hidden: int = 640, head_dim: int = 256, heads: int = 4, kv_heads: int = 1,
                     family: str = "gemma3_text", passed: bool = True, window: int | None = None):
    """An object shaped like service.explain.ExplainResult, with random numbers (views need no model)."""
    rng = np.random.default_rng(0)
    position = tokens - 1
    mask = np.arange(tokens) <= position
    if window:
        mask &= np.arange(tokens) > position - window
    scores = rng.normal(size=tokens).astype(np.float32)
    row = np.where(mask, np.exp(scores), 0)
    row = (row / row.sum()).astype(np.float32)
    matrix = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    rope = family == "gemma3_text"
    names = ["<bos>", "<script>alert(1)</script>", "&amp;", " the"] + [f"w{i}" for i in range(tokens - 4)]
    return SimpleNamespace(
        model_name="demo <model>", family=family, tokens=names[:tokens], token_ids=list(range(tokens)),
        special=[True] + [False] * (tokens - 1), layer=5, head=3, position=position, kv_head=0, num_layers=18,
        num_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim, hidden_size=hidden,
        layer_type=f"sliding:{window}" if window else ("full" if family in ("gemma3_text", "gpt2") else "bidirectional"),
        scale=0.0625, embedding_scale=25.3 if rope else None, uses_rope=rope, uses_qk_norm=rope,
        token_embeddings=matrix(tokens, hidden), input_embeddings=matrix(tokens, hidden),
        layer_input=matrix(tokens, hidden), attention_input=matrix(tokens, hidden),
        query_raw=matrix(tokens, head_dim), key_raw=matrix(tokens, head_dim), value=matrix(tokens, head_dim),
        query_normed=matrix(tokens, head_dim) if rope else None, key_normed=matrix(tokens, head_dim) if rope else None,
        query=matrix(tokens, head_dim), key=matrix(tokens, head_dim), scores_raw=scores, mask=mask,
        scores_masked=np.where(mask, scores, -np.inf), recomputed=row,
        model_row=row if passed else row[::-1].copy(), head_output=matrix(head_dim),
        heads_concat=matrix(heads * head_dim), attention_output=matrix(hidden), residual=matrix(hidden),
        block_output=matrix(hidden), max_abs_diff=3e-8 if passed else 0.2, passed=passed, notes=[],
        facts=FACTS[family],
    )


def test_five_steps_each_with_prose_a_formula_and_a_figure():
    steps = explain_steps(synthetic_result())
    assert [step.number for step in steps] == [1, 2, 3, 4, 5]
    for step in steps:
        text = step.markdown()
        assert text.startswith(f"### {step.number}. ") and "$$" in text
        assert step.prose.endswith(".") and step.formula.strip()
        assert step.figure.data


def test_long_vectors_are_truncated_and_labelled_as_truncated():
    steps = explain_steps(synthetic_result(hidden=640, head_dim=256))
    embedding, qkv = steps[0].figure, steps[1].figure
    assert f"first {MAX_DIMS} of 640 dims — truncated" in embedding.layout.title.text
    assert f"first {MAX_DIMS} of 256 dims — truncated" in qkv.layout.title.text
    for trace in embedding.data + qkv.data:
        values = np.asarray(trace.z if trace.type == "heatmap" else trace.y)
        assert values.shape[-1] <= MAX_DIMS


def test_short_vectors_are_shown_whole():
    steps = explain_steps(synthetic_result(tokens=8, hidden=32, head_dim=8, family="bert", heads=4, kv_heads=4))
    assert "all 32 dims" in steps[0].figure.layout.title.text and "truncated" not in steps[0].figure.layout.title.text


def test_figures_stay_small_at_64_tokens():
    for step in explain_steps(synthetic_result(tokens=64)):
        assert len(pio.to_json(step.figure)) < 250_000, step.title


def test_masked_keys_are_drawn_apart_and_the_formula_names_the_window():
    result = synthetic_result(tokens=20, window=4)
    scores = explain_steps(result)[2]
    assert r"j \le i - 4" in scores.formula and "sliding-window" in scores.prose
    masked = [trace for trace in scores.figure.data if trace.name == "masked"]
    assert masked and np.count_nonzero(~np.isnan(np.asarray(masked[0].y, dtype=float))) == 16


def test_encoder_steps_say_there_is_no_mask_and_post_norm():
    steps = explain_steps(synthetic_result(tokens=10, hidden=48, head_dim=12, family="bert", heads=4, kv_heads=4))
    assert "no mask" in steps[2].formula and "later tokens" in steps[2].prose
    assert r"\mathrm{LayerNorm}(h_i + \mathrm{attn}_i)" in steps[3].formula


def test_grouped_query_attention_is_explained_for_gemma():
    qkv = explain_steps(synthetic_result())[1]
    assert "grouped-query" in qkv.prose and "key/value head 0" in qkv.prose and "RoPE" in qkv.prose


def test_verification_shows_a_check_or_a_clear_cross():
    good, bad = synthetic_result(), synthetic_result(passed=False)
    assert verdict(good).startswith("✓") and "< 1e-4" in verdict(good)
    assert verdict(bad).startswith("✗") and "≥ 1e-4" in verdict(bad)
    assert explain_steps(bad)[4].prose.startswith("✗") and r"\ge" in explain_steps(bad)[4].formula
    assert "✓" in explain_steps(good)[4].figure.layout.title.text


def test_tokens_are_escaped_in_html_and_plot_labels():
    result = synthetic_result(tokens=8)
    strip = token_strip_html(result)
    assert "<script>" not in strip and "&lt;script&gt;" in strip and "&amp;amp;" in strip
    figure_json = json.dumps([json.loads(pio.to_json(step.figure)) for step in explain_steps(result)])
    assert "<script>" not in figure_json


def test_architecture_card_html_escapes_and_draws_one_block_per_norm_placement():
    card = {"family": "Gemma 3", "model_type": "gemma3_text", "architecture": "decoder-only", "num_layers": 18,
            "num_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "hidden_size": 640, "ffn_size": 2048,
            "vocab_size": 262144, "parameters": 268_098_176, "layer_types": ["sliding:512", "full"],
            "norm_placement": "pre+post (sandwich)", "uses_rope": True, "uses_qk_norm": True,
            "norm": "RMSNorm <b>", "positional": "RoPE", "attention": "causal"}
    html_text = architecture_card_html(card, "gemma <x>")
    assert "gemma &lt;x&gt;" in html_text and "RMSNorm &lt;b&gt;" in html_text and "<script" not in html_text
    assert "268,098,176" in html_text and "<svg" in block_diagram_svg(card)
    sandwich = [kind for kind, _ in block_operations(card)]
    assert sandwich == ["branch", "norm", "attention", "norm", "add", "branch", "norm", "mlp", "norm", "add"]
    pre = [kind for kind, _ in block_operations({**card, "norm_placement": "pre-norm"})]
    post = [kind for kind, _ in block_operations({**card, "norm_placement": "post-norm"})]
    assert pre.index("norm") < pre.index("attention")                        # GPT-2: norm first
    assert post.index("attention") < post.index("add") < post.index("norm")  # BERT: add, then norm
    labels = " ".join(label for _, label in block_operations(card))
    assert "RoPE" in labels and "GQA" in labels and "causal" in labels
    svg = block_diagram_svg({**card, "architecture": "encoder-only", "uses_rope": False, "layer_types": []})
    assert "bidirectional" in svg and "RoPE" not in svg


@pytest.mark.parametrize("module", ["viz.explain"])
def test_view_module_imports_without_torch_or_transformers(module):
    code = f"import sys, {module}; print('torch' in sys.modules or 'transformers' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"
