"""Zero-shot vs few-shot, side by side: the tab's kept result against the same input run without demonstrations.

Shown under the attention panel of Ask, Translate and Sentiment once a result with demonstrations is kept (the
embedded profile's few-shot prompts; the hub profile's fine-tuned models read none, so there it stays hidden). The
button runs the model once more (zero-shot) and compares that run with the kept one: both answers with their
scores, and where the produced tokens' attention went in each (viz.focus.plot_shot_comparison).
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from demos import MODEL_EVENT, VIEW_EVENT, load_model, session_id, user_errors
from demos.store import ResultStore
from service.analysis.segments import segment_shares
from service.errors import InvalidInputError, UnsupportedError
from service.result import AttentionResult
from viz.focus import plot_shot_comparison

THEME = "light"
ANSWER_KEYS = {"qa": "answer", "translation": "translation", "sentiment": "label"}
BUTTON_LABEL = "Run it again without the demonstrations (zero-shot) and compare"
NOTE = ("Runs the model once more on the same input with the demonstrations left out (the instruction and the "
        "format words stay), then shows both answers and where the attention went in each run.")
CAPTION = ("Same input, two prompts: where the answers differ, the demonstrations changed what this model produced. "
           "The share of attention on your text says where the produced tokens looked, not why the model answered.")
NO_RESULT = "No result is kept for this tab (it expired, or the last run did not complete). Run the task first."
CHANGED = ("The text in the boxes changed since the last run, so there is nothing to compare it with. Run the task "
           "again on this text first, then compare.")
NOT_FEWSHOT = ("This result's prompt has no demonstrations to leave out: the model read your text alone. Zero-shot "
               "vs few-shot applies to the few-shot prompts of the embedded profile.")


def has_demonstrations(result: AttentionResult | None) -> bool:
    """Whether the result's prompt holds demonstrations (segments named by the prompt builder)."""
    return result is not None and any(segment.name.startswith("demonstration") for segment in result.segments)


def user_text(result: AttentionResult) -> list[tuple[str, tuple[str, ...]]]:
    """The user's own segments (name, tokens): what must be the same in both runs for them to compare."""
    tokens = result.tokens()
    return [(segment.name, tuple(tokens[segment.start:segment.end])) for segment in result.segments
            if segment.role == "input" and segment.side == result.main_side]


def run_zero_shot(service: Any, store: ResultStore, task: str, values: dict[str, Any], request: gr.Request | None,
                  progress: Any) -> tuple[AttentionResult, AttentionResult]:
    """(kept few-shot result, the same input run zero-shot). The text in the boxes must still be the kept run's."""
    few = store.get(session_id(request), task)
    if few is None:
        raise InvalidInputError(NO_RESULT)
    if not has_demonstrations(few):
        raise UnsupportedError(NOT_FEWSHOT)
    inputs = dict(values)
    if task == "translation":  # the kept run's direction, even when it was detected ("auto")
        inputs["direction"] = few.prediction.get("direction", "auto")
    load_model(service, task, progress)
    zero = service.run_task(task, inputs, zero_shot=True)
    if user_text(zero) != user_text(few):
        raise InvalidInputError(CHANGED)
    return few, zero


def comparison_html(task: str, few: AttentionResult, zero: AttentionResult) -> str:
    """Both answers with their scores, the prompt sizes and the attention on the user's text (all escaped)."""
    demonstrations = len({s.name for s in few.segments if s.name.startswith("demonstration")})
    columns = [(f"Few-shot: {demonstrations} demonstrations", few), ("Zero-shot: no demonstrations", zero)]
    rows = [
        ("Answer", [_answer(task, result) for _, result in columns]),
        ("Score", [_score(result) for _, result in columns]),
        ("Prompt", [f"{len(result.tokens())} tokens" for _, result in columns]),
        ("Attention on your text (mean over layers)", [_on_input(result) for _, result in columns]),
    ]
    cell = 'style="padding: 0.25em 0.8em; text-align: left; vertical-align: top"'
    head = "".join(f"<th {cell}>{html.escape(title)}</th>" for title, _ in columns)
    body = "".join(f"<tr><th {cell}>{html.escape(name)}</th>" + "".join(f"<td {cell}>{value}</td>" for value in values)
                   + "</tr>" for name, values in rows)
    same = _answer(task, few) == _answer(task, zero)
    verdict = ("Both prompts gave the same answer." if same else
               "The answers differ: the demonstrations changed what the model produced.")
    return (f'<div class="atlas-shots"><table style="border-collapse: collapse">'
            f"<tr><th></th>{head}</tr>{body}</table>"
            f"<p><strong>{html.escape(verdict)}</strong> {html.escape(CAPTION)} Score: as the task's JSON reports "
            "it (for Sentiment, the probability of the label).</p></div>")


def _answer(task: str, result: AttentionResult) -> str:
    answer = str(result.prediction.get(ANSWER_KEYS.get(task, ""), ""))
    return html.escape(answer) if answer.strip() else "<em>(no answer)</em>"


def _score(result: AttentionResult) -> str:
    score = result.prediction.get("score")
    return f"{float(score):.2f}" if isinstance(score, (int, float)) and not isinstance(score, bool) else "–"


def _on_input(result: AttentionResult) -> str:
    """Share of the produced tokens' attention on the user's segments, averaged over layers (heads averaged)."""
    shares = [share for share in segment_shares(result) if share.role == "input"]
    if not shares:
        return "–"
    per_layer = [sum(values) for values in zip(*(share.share_by_layer for share in shares))]
    return f"{sum(per_layer) / len(per_layer):.0%}"


class ShotComparison:
    """The control under a tab's panel: hidden until a few-shot result is kept, then one button and its output."""

    def __init__(self, service: Any, store: ResultStore, task: str, fields: dict[str, Any], run_event: Any,
                 elem_prefix: str) -> None:
        if task not in ANSWER_KEYS:
            raise ValueError(f"zero-shot comparison is for {', '.join(ANSWER_KEYS)}, not {task!r}")
        self.service, self.store, self.task, self.names = service, store, task, list(fields)
        with gr.Group(visible=False, elem_id=f"{elem_prefix}-shots") as self.group:
            self.button = gr.Button(BUTTON_LABEL, size="sm", elem_id=f"{elem_prefix}-shots-run")
            gr.Markdown(NOTE, elem_id=f"{elem_prefix}-shots-note")
            self.answers = gr.HTML(visible=False, elem_id=f"{elem_prefix}-shots-answers")
            self.plot = gr.Plot(visible=False, show_label=False, elem_id=f"{elem_prefix}-shots-plot")
        run_event.success(self.after_run, outputs=[self.group, self.answers, self.plot], **VIEW_EVENT)
        self.button.click(self._handler(len(fields)), inputs=list(fields.values()), outputs=[self.answers, self.plot],
                          preprocess=False, api_visibility="private", **MODEL_EVENT)  # /compare_shots is the API

    def after_run(self, request: gr.Request) -> dict[Any, Any]:
        """A new result: offer the comparison when its prompt had demonstrations; the old comparison goes."""
        kept = self.store.get(session_id(request), self.task)
        return {self.group: gr.update(visible=has_demonstrations(kept)), self.answers: gr.update(visible=False),
                self.plot: gr.update(visible=False)}

    def compare(self, values: list[Any], request: gr.Request | None, progress: Any) -> dict[Any, Any]:
        """Run zero-shot on the kept input; both answers and both runs' attention by segment."""
        with user_errors():
            few, zero = run_zero_shot(self.service, self.store, self.task, dict(zip(self.names, values)), request,
                                      progress)
            figure = plot_shot_comparison(few, zero, theme=THEME)
        return {self.answers: gr.update(value=comparison_html(self.task, few, zero), visible=True),
                self.plot: gr.update(value=figure, visible=True)}

    def _handler(self, count: int) -> Any:
        # Gradio passes one argument per input component and finds gr.Request / gr.Progress by signature
        if count == 1:
            def compare_zero_shot(first, request: gr.Request, progress=gr.Progress()):  # noqa: B008
                return self.compare([first], request, progress)
        elif count == 2:
            def compare_zero_shot(first, second, request: gr.Request, progress=gr.Progress()):  # noqa: B008
                return self.compare([first, second], request, progress)
        else:
            raise ValueError(f"a task has one or two text fields, not {count}")
        return compare_zero_shot
