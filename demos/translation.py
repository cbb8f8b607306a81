"""Translate tab: English ↔ Chinese, then show self- and cross-attention (where the model has them)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from demos import MODEL_EVENT, load_model, run_alone, session_id, user_errors
from demos.attention_panel import AttentionPanel
from demos.examples import TRANSLATION_EXAMPLES
from demos.shots import ShotComparison
from demos.store import DEFAULT_STORE, ResultStore
from service import limits
from service.validation import check_direction, check_text

TASK = "translation"
DIRECTION_CHOICES = [("Detect automatically", "auto"), ("English → Chinese", "en-zh"), ("Chinese → English", "zh-en")]


def run_translation(service: Any, store: ResultStore, text: Any, direction: Any, request: gr.Request | None,
                    progress: Any) -> tuple[dict[str, Any], str]:
    """Validate, load lazily, translate, keep the result for the panel; returns (JSON, translation text)."""
    with user_errors():
        text = check_text(text, "text to translate")
        direction = check_direction(direction)
        load_model(service, TASK, progress)
        result = service.translate(text, direction=direction)
    store.put(session_id(request), TASK, result)
    return dict(result.prediction), str(result.prediction.get("translation", ""))


def build_tab(service: Any, store: ResultStore | None = None) -> AttentionPanel:
    """The Translate tab's components and events, built into the current Blocks context; returns its panel."""
    store = store or DEFAULT_STORE
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text", lines=3, max_length=limits.MAX_INPUT_CHARS, elem_id="tr-text",
                              placeholder="English or Chinese text")
            direction = gr.Radio(DIRECTION_CHOICES, value="auto", label="Direction", elem_id="tr-direction")
            run = gr.Button("Translate", variant="primary", elem_id="tr-run")
        with gr.Column(scale=2):
            shown = gr.Textbox(label="Translation", lines=3, interactive=False, elem_id="tr-output")
            result_json = gr.JSON(label="Result (JSON)", elem_id="tr-json")
    gr.Examples(TRANSLATION_EXAMPLES, inputs=[text, direction], label="Examples (English and Chinese)",
                api_visibility="private")
    panel = AttentionPanel(TASK, store, elem_prefix="tr", service=service)

    def translate(text, direction, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        return run_translation(service, store, text, direction, request, progress)

    event = run.click(translate, inputs=[text, direction], outputs=[result_json, shown], api_name="translate",
                      api_description="Translate between English and Chinese; direction 'auto', 'en-zh' or "
                                      "'zh-en'. Returns {'translation', 'direction'} and the text.",
                      preprocess=False, **MODEL_EVENT)  # raw values: the handler checks them all, by name
    panel.refresh_after(event)
    ShotComparison(service, store, TASK, {"text": text}, event, elem_prefix="tr")
    return panel


if __name__ == "__main__":
    run_alone(build_tab, "Translate")
