"""Generate tab: continue a prompt, streaming tokens as they come, then show what the model attended to."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import gradio as gr

from demos import MODEL_EVENT, VIEW_EVENT, load_model, run_alone, session_id, user_errors
from demos.attention_panel import AttentionPanel
from demos.examples import GENERATION_EXAMPLES
from demos.store import DEFAULT_STORE, ResultStore
from service import limits
from service.validation import check_sampling, check_text

TASK = "generation"


STOPPING_MESSAGE = "Stopping… the attention view for the text written so far appears here in a moment."


class StopRequests:
    """The Stop button of each session: its running generation finishes early and still shows its attention."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    def begin(self, session: str) -> threading.Event:
        """A run starts for `session`; Stop sets the event it returns."""
        event = threading.Event()
        with self._lock:
            self._events[session] = event
        return event

    def end(self, session: str, event: threading.Event) -> None:
        with self._lock:
            if self._events.get(session) is event:
                del self._events[session]

    def stop(self, session: str) -> bool:
        """Ask the session's running generation to finish now; False when none is running."""
        with self._lock:
            event = self._events.get(session)
        if event is None:
            return False
        event.set()
        return True


def run_generation(
    service: Any, store: ResultStore, prompt: Any, max_new_tokens: Any, temperature: Any, top_k: Any, top_p: Any,
    seed: Any, request: gr.Request | None, progress: Any, stop_requests: StopRequests | None = None,
) -> Iterator[tuple[dict[str, Any], str]]:
    """Validate, load lazily, stream (JSON, text) after every new token, keep the final result for the panel.

    Stop (through `stop_requests`) ends generation early and still keeps the result for the text so far."""
    session = session_id(request)
    finish_early = stop_requests.begin(session) if stop_requests is not None else None
    try:
        yield from _stream_run(service, store, prompt, max_new_tokens, temperature, top_k, top_p, seed, session,
                               progress, finish_early)
    finally:
        if stop_requests is not None and finish_early is not None:
            stop_requests.end(session, finish_early)


def _stream_run(
    service: Any, store: ResultStore, prompt: Any, max_new_tokens: Any, temperature: Any, top_k: Any, top_p: Any,
    seed: Any, session: str, progress: Any, finish_early: threading.Event | None,
) -> Iterator[tuple[dict[str, Any], str]]:
    with user_errors():
        prompt = check_text(prompt, "prompt")
        settings = check_sampling(max_new_tokens, temperature, top_k, top_p, seed)
        load_model(service, TASK, progress)
        stream = service.stream_generate(
            prompt, max_new_tokens=settings[0], temperature=settings[1], top_k=settings[2], top_p=settings[3],
            seed=settings[4], finish_early=finish_early,
        )
    try:
        while True:
            with user_errors():
                item = next(stream, None)
            if item is None:
                return
            if isinstance(item, str):
                yield {"text": item}, item
            else:
                store.put(session, TASK, item)
                text = str(item.prediction.get("text", ""))
                yield dict(item.prediction), text
    finally:
        close = getattr(stream, "close", None)
        if close is not None:  # a closed tab (or an API client's cancel) ends generation and frees the worker
            close()


def build_tab(service: Any, store: ResultStore | None = None) -> AttentionPanel:
    """The Generate tab's components and events, built into the current Blocks context; returns its panel."""
    store = store or DEFAULT_STORE
    stop_requests = StopRequests()
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=3, max_length=limits.MAX_INPUT_CHARS, elem_id="gen-prompt",
                                placeholder="Type the beginning of a text; the model continues it.")
            with gr.Accordion("Sampling settings", open=False):
                max_new_tokens = gr.Slider(1, limits.MAX_NEW_TOKENS, value=limits.DEFAULT_MAX_NEW_TOKENS, step=1,
                                           label="Max new tokens", elem_id="gen-max-new-tokens")
                temperature = gr.Slider(*limits.TEMPERATURE_RANGE, value=0.0, step=0.05, label="Temperature",
                                        info="0 = greedy (always the most likely token)", elem_id="gen-temperature")
                top_k = gr.Slider(*limits.TOP_K_RANGE, value=0, step=1, label="Top-k",
                                  info="0 = no top-k filtering", elem_id="gen-top-k")
                top_p = gr.Slider(0.01, limits.TOP_P_RANGE[1], value=1.0, step=0.01, label="Top-p",
                                  info="1 = no nucleus filtering", elem_id="gen-top-p")
                seed = gr.Number(0, precision=0, label="Seed",  # range checked in the handler, with the field's name
                                 info="same seed + settings = same text", elem_id="gen-seed")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="gen-run")
                stop = gr.Button("Stop", variant="stop", elem_id="gen-stop")
        with gr.Column(scale=2):
            text = gr.Textbox(label="Continuation", lines=6, interactive=False, elem_id="gen-output")
            result_json = gr.JSON(label="Result (JSON)", elem_id="gen-json")
    inputs = [prompt, max_new_tokens, temperature, top_k, top_p, seed]
    gr.Examples(GENERATION_EXAMPLES, inputs=inputs, label="Examples (English and Chinese)",
                api_visibility="private")
    panel = AttentionPanel(TASK, store, elem_prefix="gen")

    def generate(prompt, max_new_tokens, temperature, top_k, top_p, seed, request: gr.Request,
                 progress=gr.Progress()):  # noqa: B008 (Gradio injects the progress tracker)
        yield from run_generation(service, store, prompt, max_new_tokens, temperature, top_k, top_p, seed,
                                  request, progress, stop_requests)

    def finish_now(request: gr.Request):
        return STOPPING_MESSAGE if stop_requests.stop(session_id(request)) else gr.update()

    event = panel.blank_on(run).then(
        generate, inputs=inputs, outputs=[result_json, text], api_name="generate",
        api_description="Continue a prompt. Returns {'text': continuation} (JSON) and the text.",
        preprocess=False, **MODEL_EVENT)  # raw values: the handler checks them all, by name
    panel.refresh_after(event)
    panel.explain_failures(event)
    # Stop ends generation within one token, and the attention of the text so far is still captured and drawn.
    stop.click(finish_now, outputs=[panel.info], **VIEW_EVENT)
    return panel


if __name__ == "__main__":
    run_alone(build_tab, "Generate")
