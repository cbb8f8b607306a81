"""Ask tab: answer a question from a context (a span of the context), then show what the model attended to."""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from demos import BATCHED_MODEL_EVENT, load_model, run_alone, session_id, user_errors
from demos.attention_panel import AttentionPanel
from demos.examples import QA_EXAMPLES
from demos.shots import ShotComparison
from demos.store import DEFAULT_STORE, ResultStore
from service import limits
from service.validation import check_text

TASK = "qa"


def answer_html(context: str, prediction: dict[str, Any]) -> str:
    """The context with the answer span highlighted (every piece escaped)."""
    answer = str(prediction.get("answer", ""))
    start, end = prediction.get("start"), prediction.get("end")
    score = prediction.get("score")
    score_text = f" <small>(score {float(score):.2f})</small>" if isinstance(score, (int, float)) else ""
    shown = f'<span class="atlas-content">{html.escape(answer)}</span>' if answer else "<em>(no answer)</em>"
    head = f"<p><strong>Answer:</strong> {shown}{score_text}</p>"
    if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(context) and end > start:
        body = (html.escape(context[:start]) + "<mark>" + html.escape(context[start:end]) + "</mark>"
                + html.escape(context[end:]))
    else:
        body = html.escape(context)
    return f'<div class="atlas-answer">{head}<p class="atlas-context">{body}</p></div>'


def run_qa(service: Any, store: ResultStore, context: Any, question: Any, request: gr.Request | None,
           progress: Any) -> tuple[dict[str, Any], str]:
    """Validate, load lazily, answer, keep the result for the panel; returns (JSON, highlighted context HTML)."""
    with user_errors():
        context = check_text(context, "context", limits.MAX_CONTEXT_CHARS)
        question = check_text(question, "question", limits.MAX_INPUT_CHARS)
        load_model(service, TASK, progress)
        result = service.answer(context, question)
    store.put(session_id(request), TASK, result)
    return dict(result.prediction), answer_html(context, result.prediction)


def build_tab(service: Any, store: ResultStore | None = None) -> AttentionPanel:
    """The Ask tab's components and events, built into the current Blocks context; returns its panel."""
    store = store or DEFAULT_STORE
    with gr.Row():
        with gr.Column(scale=3):
            context = gr.Textbox(label="Context", lines=5, max_length=limits.MAX_CONTEXT_CHARS, elem_id="qa-context",
                                 placeholder="A paragraph that contains the answer.")
            question = gr.Textbox(label="Question", lines=1, max_length=limits.MAX_INPUT_CHARS,
                                  elem_id="qa-question")
            run = gr.Button("Answer", variant="primary", elem_id="qa-run")
        with gr.Column(scale=2):
            shown = gr.HTML(label="Answer", elem_id="qa-output")
            result_json = gr.JSON(label="Result (JSON)", elem_id="qa-json")
    gr.Examples(QA_EXAMPLES, inputs=[context, question], label="Examples (English and Chinese)",
                api_visibility="private")
    panel = AttentionPanel(TASK, store, elem_prefix="qa", service=service)

    def answer(context, question, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        return run_qa(service, store, context, question, request, progress)

    event = run.click(answer, inputs=[context, question], outputs=[result_json, shown], api_name="answer",
                      api_description="Answer a question from a context. Returns {'answer', 'start', 'end', "
                                      "'score'} (character offsets into the context) and an HTML view.",
                      preprocess=False, **BATCHED_MODEL_EVENT)  # raw values: the handler checks them all, by name
    panel.refresh_after(event)
    ShotComparison(service, store, TASK, {"context": context, "question": question}, event, elem_prefix="qa")
    return panel


if __name__ == "__main__":
    run_alone(build_tab, "Ask")
