"""Rows for long inputs (issue 13): a pasted paragraph in Ask (about 1,000 tokens with the few-shot prompt) keeps
queries and keys, not whole matrices; how much it keeps, how long its first view and a layer switch take, and how
many bytes an update sends."""

from __future__ import annotations

from typing import Any

from bench.stats import time_call
from bench.table import Row, Target, format_sample, format_value

PARAGRAPH = ("Marie Curie was born in Warsaw in 1867. She moved to Paris in 1891 to study physics and mathematics at "
             "the Sorbonne, where she met Pierre Curie. Together they discovered polonium and radium, and in 1903 "
             "they shared the Nobel Prize in Physics with Henri Becquerel. After Pierre died in 1906, she took over "
             "his teaching post and became the first woman to teach at the Sorbonne. ")
LONG_CONTEXT = (PARAGRAPH * 12)[:3300]      # with the prompt around it: ~1,030 tokens on Gemma (the cap is 1,024)
QUESTION = "Where was Marie Curie born?"
NAME = "Long input (Ask, 3,300-character context)"
KEPT_TARGET = Target(100e6, "B")
FIRST_VIEW_TARGET = Target(1.0, "s")
LONG_SWITCH_TARGET = Target(0.300, "s")
LONG_PAYLOAD_TARGET = Target(250_000, "B")


def measure_long_rows(ctx: Any) -> list[Row]:
    """Kept memory, first view, layer switch and payload of one Ask result over LONG_CONTEXT."""
    from bench.views import SwitchBench

    ctx.log("a long Ask result: kept attention, first view, layer switch")
    built, result = time_call(lambda: ctx.service.answer(LONG_CONTEXT, QUESTION))
    attention = result.self_attention()               # (layer, head, query_pos, key_pos), kept as queries and keys
    layers, heads, tokens, _ = attention.shape
    whole = layers * heads * tokens * tokens * 4
    kept_notes = [f"{type(attention).__name__}: {layers} layers × (query + key heads) × {tokens} tokens × head "
                  f"dim, float32; whole matrices would be {format_value(whole, 'B')}. The Ask request (the answer, "
                  f"then one pass that keeps queries and keys) took {format_value(built, 's')}."]
    bench = SwitchBench("qa")
    first, _ = time_call(lambda: bench.measure(result, "heads", 0))  # keeps the result, draws one layer, cold
    switch = bench.measure(result, "heads", ctx.settings.switches, vary="layer")
    applies = ctx.targets_apply
    return [
        Row(f"{NAME}: attention kept ({tokens} tokens)", "—", format_value(attention.nbytes, "B"),
            attention.nbytes, "B", KEPT_TARGET, kept_notes, target_applies=applies),
        Row(f"{NAME}: first view", "— (no model call)", format_value(first, "s"), first, "s",
            FIRST_VIEW_TARGET, ["Every head of layer 0, computed from the kept queries and keys, plus "
                                "the figure JSON."], target_applies=applies),
        Row(f"{NAME}: view switch (layer)", "— (no model call)", format_sample(switch.seconds),
            switch.seconds.median, "s", LONG_SWITCH_TARGET,
            [f"Each switch computes the new layer (a matrix product and a softmax per head): handler "
             f"{format_value(switch.redraw_seconds.median, 's')} + figure JSON "
             f"{format_value(switch.serialise_seconds.median, 's')}."], target_applies=applies),
        Row(f"{NAME}: payload per view update", "—", format_sample(switch.figure_bytes, "B"),
            switch.figure_bytes.median, "B", LONG_PAYLOAD_TARGET,
            [f"Whole update with every output: {format_value(switch.update_bytes.median, 'B')}; the heatmaps pool "
             "to fit."], target_applies=applies),
    ]

