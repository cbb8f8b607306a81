"""Sentiment tab: positive or negative, with a score, then show what the model attended to."""

from __future__ import annotations

from typing import Any

import gradio as gr

from demos import BATCHED_MODEL_EVENT, load_model, run_alone, session_id, user_errors
from demos.attention_panel import AttentionPanel
from demos.examples import SENTIMENT_EXAMPLES
from demos.shots import ShotComparison
from demos.store import DEFAULT_STORE, ResultStore
from service import limits
from service.validation import check_text

TASK = "sentiment"


def label_confidences(prediction: dict[str, Any]) -> dict[str, float]:
    """{"positive": p, "negative": 1 - p} for gr.Label, from {"label", "score"} (score = the label's probability)."""
    scores = prediction.get("scores")
    if isinstance(scores, dict) and {"positive", "negative"} <= set(scores):
        return {"positive": float(scores["positive"]), "negative": float(scores["negative"])}
    score = float(prediction.get("score", 0.0))
    positive = score if prediction.get("label") == "positive" else 1.0 - score
    return {"positive": positive, "negative": 1.0 - positive}


def run_sentiment(service: Any, store: ResultStore, text: Any, request: gr.Request | None,
                  progress: Any) -> tuple[dict[str, Any], dict[str, float]]:
    """Validate, load lazily, classify, keep the result for the panel; returns (JSON, label confidences)."""
    with user_errors():
        text = check_text(text, "text to classify")
        load_model(service, TASK, progress)
        result = service.classify(text)
    store.put(session_id(request), TASK, result)
    return dict(result.prediction), label_confidences(result.prediction)


def build_tab(service: Any, store: ResultStore | None = None) -> AttentionPanel:
    """The Sentiment tab's components and events, built into the current Blocks context; returns its panel."""
    store = store or DEFAULT_STORE
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text", lines=3, max_length=limits.MAX_INPUT_CHARS, elem_id="sent-text",
                              placeholder="A review or a sentence, English or Chinese")
            run = gr.Button("Classify", variant="primary", elem_id="sent-run")
        with gr.Column(scale=2):
            shown = gr.Label(label="Sentiment", num_top_classes=2, elem_id="sent-output")
            result_json = gr.JSON(label="Result (JSON)", elem_id="sent-json")
    gr.Examples(SENTIMENT_EXAMPLES, inputs=[text], label="Examples (English and Chinese)",
                api_visibility="private")
    panel = AttentionPanel(TASK, store, elem_prefix="sent", service=service)

    def classify(text, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        return run_sentiment(service, store, text, request, progress)

    event = run.click(classify, inputs=[text], outputs=[result_json, shown], api_name="classify",
                      api_description="Classify sentiment. Returns {'label': 'positive'|'negative', 'score'} "
                                      "and label confidences.",
                      preprocess=False, **BATCHED_MODEL_EVENT)  # raw values: the handler checks them all, by name
    panel.refresh_after(event)
    ShotComparison(service, store, TASK, {"text": text}, event, elem_prefix="sent")
    return panel


if __name__ == "__main__":
    run_alone(build_tab, "Sentiment")
