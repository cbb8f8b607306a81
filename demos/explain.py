"""Explain tab: self-attention step by step on the model's real numbers, verified against the model's own attention."""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from demos import MODEL_EVENT, VIEW_EVENT, run_alone, user_errors
from service import limits
from service.validation import check_number
from viz.explain import architecture_card_html, explain_steps, token_strip_html, verdict

DEFAULT_TEXT = "The teacher explained attention, and the students finally understood it."
EXAMPLES = [
    [DEFAULT_TEXT],
    ["The cat sat on the mat because it was tired."],
    ["机器学习正在改变世界。"],
]
# Display math only with $$ … $$: a single $ is too common in user text to mean LaTeX.
LATEX_DELIMITERS = [{"left": "$$", "right": "$$", "display": True}]
MODEL_LABELS = {
    "minilm": "MiniLM-L6 (BERT encoder, bidirectional)",
}
NUM_STEPS = 5
INITIAL_MAX_LAYER = 63
INITIAL_MAX_HEAD = 31


def _whole(value: Any, name: str) -> int:
    """A whole number from a Gradio Number/Slider (None, NaN, huge numbers and fractions are the user's mistake)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise gr.Error(f"{name} must be a whole number, got text.") from None
    with user_errors():
        # Explain indices are small; a bound of ±10⁶ still lets the service name the real range in its message.
        return int(check_number(value, name, -1_000_000, 1_000_000, integer=True))


def explain_json(service: Any, text: Any, layer: Any, head: Any, position: Any, model: str = "default") -> dict:
    """The API answer: tokens, recomputed row, the model's row, max_abs_diff and the step data (JSON)."""
    with user_errors():
        result = service.explain(text, _whole(layer, "layer"), _whole(head, "head"), _whole(position, "position"),
                                 model=model)
    return result.to_json()


def render_explanation(service: Any, text: Any, model: Any, layer: Any, head: Any, position: Any) -> list[Any]:
    """Run the explanation and return every output of the tab, in the order `build_tab` lists them."""
    if not isinstance(text, str) or not text.strip():
        raise gr.Error("Type a sentence to explain: the text is empty.")
    if len(text) > limits.MAX_INPUT_CHARS:
        raise gr.Error(f"The text has {len(text)} characters; the limit is {limits.MAX_INPUT_CHARS}.")
    with user_errors():
        result = service.explain(text, _whole(layer, "layer"), _whole(head, "head"), _whole(position, "position"),
                                 model=str(model or "default"))
        steps = explain_steps(result)
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in result.notes)
    summary = (f"**{html.escape(verdict(result))}** — {html.escape(result.model_name)}, layer {result.layer} "
               f"({html.escape(result.layer_type)}), head {result.head}, query token {result.position}")
    outputs: list[Any] = [
        architecture_card_html(result.card, result.model_name),
        token_strip_html(result) + (f"<ul style='margin:4px 0 0 16px'>{notes}</ul>" if notes else ""),
        summary,
        result.to_json(),
    ]
    for step in steps:
        outputs.extend([step.markdown(), step.figure])
    outputs.extend([
        gr.update(maximum=result.num_layers - 1, value=result.layer, info=f"0–{result.num_layers - 1}"),
        gr.update(maximum=result.num_heads - 1, value=result.head, info=f"0–{result.num_heads - 1}"),
        gr.update(value=result.position, info=f"index of the query token, 0–{len(result.tokens) - 1} "
                                              "(−1 = the last token)"),
    ])
    return outputs


def slider_ranges(service: Any, model: Any = "default") -> tuple[dict[str, Any], dict[str, Any]]:
    """Layer and head slider settings for `model`: its real ranges when the service knows them without loading it,
    else the broad initial ranges with a note (the first run sets them)."""
    try:
        shape = service.explain_shape(str(model or "default"))
    except Exception:  # noqa: BLE001 - a range hint must never break the tab
        shape = None
    if shape is None:
        note = "the range is set by the model on the first run"
        return {"maximum": INITIAL_MAX_LAYER, "info": note}, {"maximum": INITIAL_MAX_HEAD, "info": note}
    layers, heads = shape
    return ({"maximum": max(layers - 1, 1), "info": f"0–{layers - 1}", "interactive": layers > 1},
            {"maximum": max(heads - 1, 1), "info": f"0–{heads - 1}", "interactive": heads > 1})


def default_model_label(service: Any) -> str:
    """The "default" choice, naming the model this profile really explains (its generation model), read from the
    service without loading anything."""
    try:
        name = service.model_name("generation")
    except Exception:  # noqa: BLE001 - a label must never break the tab; a service without the method says less
        return "Default: this profile's generation model"
    return f"Default: this profile's generation model ({name})"


def model_choices(service: Any) -> list[tuple[str, str]]:
    """(label, value) pairs for the model dropdown, from service.explain_models()."""
    return [(default_model_label(service) if name == "default" else MODEL_LABELS.get(name, name), name)
            for name in service.explain_models()]


def build_tab(service: Any) -> None:
    """The Explain tab's components and events, built into the current Blocks/Tab context."""
    gr.Markdown(
        "Type a sentence, pick a model, a layer, a head and a query token, and follow one attention head "
        "through the model's **real numbers**. The last step checks the hand computation against the "
        "attention the model itself returned."
    )
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Sentence", value=DEFAULT_TEXT, lines=2, max_length=limits.MAX_INPUT_CHARS,
                              elem_id="explain-text")
            model = gr.Dropdown(model_choices(service), value="default", label="Model", elem_id="explain-model")
        with gr.Column(scale=2):
            layer_range, head_range = slider_ranges(service)  # known before any run when the config is on disk
            layer = gr.Slider(minimum=0, value=0, step=1, label="Layer", elem_id="explain-layer", **layer_range)
            head = gr.Slider(minimum=0, value=0, step=1, label="Head", elem_id="explain-head", **head_range)
            position = gr.Number(-1, precision=0, label="Query token (position)", elem_id="explain-position",
                                 info="index of the query token (−1 = the last token)")
            run = gr.Button("Explain", variant="primary", elem_id="explain-run")
    gr.Examples(EXAMPLES, inputs=[text], label="Examples")
    summary = gr.Markdown(elem_id="explain-verdict")
    tokens = gr.HTML(elem_id="explain-tokens")
    with gr.Accordion("Architecture card (from the loaded config)", open=False):
        card = gr.HTML(elem_id="explain-card")
    step_outputs: list[Any] = []
    for number in range(1, NUM_STEPS + 1):
        step_outputs.append(gr.Markdown(latex_delimiters=LATEX_DELIMITERS, elem_id=f"explain-step-{number}"))
        step_outputs.append(gr.Plot(elem_id=f"explain-plot-{number}", show_label=False))
    with gr.Accordion("Result (JSON)", open=False):
        result_json = gr.JSON(elem_id="explain-json")

    def explain_view(text, model, layer, head, position, request: gr.Request):  # request: the visitor's language
        return render_explanation(service, text, model, layer, head, position)

    outputs = [card, tokens, summary, result_json, *step_outputs, layer, head, position]
    inputs = [text, model, layer, head, position]
    run.click(explain_view, inputs=inputs, outputs=outputs, api_name="explain_view", api_visibility="private",
              **MODEL_EVENT)

    def ranges_for(choice, request: gr.Request):
        layer_range, head_range = slider_ranges(service, choice)
        return gr.update(value=0, **layer_range), gr.update(value=0, **head_range)

    model.change(ranges_for, inputs=[model], outputs=[layer, head], **VIEW_EVENT)
    text.submit(explain_view, inputs=inputs, outputs=outputs, api_visibility="private", **MODEL_EVENT)

    def explain(text: str, layer: int, head: int, position: int) -> dict:
        """Recompute one head's attention row on the default model and compare it with the model's own.

        position is the index of the query token (-1 = last). Returns JSON with tokens, recomputed (the row),
        model (the model's row), max_abs_diff, passed and the intermediate steps.
        """
        return explain_json(service, text, layer, head, position)

    gr.api(explain, api_name="explain", **MODEL_EVENT)


if __name__ == "__main__":
    run_alone(build_tab, "Explain")
