"""Generate tab: continue a prompt, streaming tokens as they come, then show what the model attended to."""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from typing import Any

import gradio as gr

from demos import MODEL_EVENT, VIEW_EVENT, load_model, run_alone, session_id, user_errors
from demos.attention_panel import AttentionPanel
from demos.i18n import language_of, translate
from demos.examples import GENERATION_EXAMPLES
from demos.store import DEFAULT_STORE, ResultStore
from service import limits
from service.validation import check_sampling, check_text
from viz.steps import has_steps, plot_step_attention_by_layer, plot_step_candidates, step_count, step_strip_html

TASK = "generation"


STOPPING_MESSAGE = "Stopping… the attention view for the text written so far appears here in a moment."
NOTHING_TO_STOP = "Nothing is being generated now, so there is nothing to stop."
STEPS_INTRO = ("**Step by step.** Slide through the generated tokens: for each one, the candidates the model weighed "
               "(recorded while it generated, not by running it again) and what the position that predicted it "
               "attended to.")
MEAN_HEAD = -1  # the step head menu's "mean over heads"


class StopRequests:
    """The Stop button of each session: its generation finishes early and still shows its attention.

    A run is expected from the moment its button is pressed (`expect`), so a Stop pressed while the run still waits
    for its turn in the queue counts too: that run then writes one token and stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}
        self._running: set[str] = set()

    def expect(self, session: str) -> None:
        """The session pressed Generate: its run is on its way (a run already going keeps its own event)."""
        with self._lock:
            if session not in self._running:
                self._events[session] = threading.Event()

    def begin(self, session: str) -> threading.Event:
        """A run starts for `session`; Stop sets the event it returns (the one made when it was expected, if any)."""
        with self._lock:
            event = self._events.get(session) if session not in self._running else None
            event = event or threading.Event()
            self._events[session] = event
            self._running.add(session)
        return event

    def end(self, session: str, event: threading.Event) -> None:
        with self._lock:
            if self._events.get(session) is event:
                del self._events[session]
                self._running.discard(session)

    def forget(self, session: str) -> None:
        """The expected run never started (refused, or failed before its handler ran): drop what waited for it."""
        with self._lock:
            if session not in self._running:
                self._events.pop(session, None)

    def stop(self, session: str) -> bool:
        """Ask the session's generation (running or on its way) to finish now; False when there is none."""
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


class StepView:
    """The step slider of the Generate tab: one generated token at a time, its candidates and its attention."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        with gr.Group(visible=False, elem_id="gen-steps") as self.group:
            gr.Markdown(STEPS_INTRO)
            with gr.Row():
                self.step = gr.Slider(1, 2, value=1, step=1, label="Step (generated token)", interactive=True,
                                      elem_id="gen-step", scale=3)
                self.layer = gr.Slider(0, 1, value=0, step=1, label="Layer (token strip)", interactive=True,
                                       elem_id="gen-step-layer", scale=2)
                self.head = gr.Dropdown([("mean over heads", MEAN_HEAD)], value=MEAN_HEAD, label="Head",
                                        interactive=True, elem_id="gen-step-head", scale=1)
            self.candidates = gr.Plot(show_label=False, elem_id="gen-step-candidates")
            self.strip = gr.HTML(elem_id="gen-step-strip")
            self.layers = gr.Plot(show_label=False, elem_id="gen-step-layers")
        controls = [self.step, self.layer, self.head]
        for control in controls:
            control.input(self.redraw, inputs=controls, outputs=self.outputs(), trigger_mode="always_last",
                          **VIEW_EVENT)

    def outputs(self) -> list[Any]:
        return [self.group, self.step, self.layer, self.head, self.candidates, self.strip, self.layers]

    def hide(self) -> dict[Any, Any]:
        """A new run starts: the previous run's steps go."""
        return {self.group: gr.update(visible=False)}

    def refresh(self, request: gr.Request) -> dict[Any, Any]:
        """After a run: the slider spans the new result's steps, starting at the first generated token."""
        result = self.store.get(session_id(request), TASK)
        if result is None or not has_steps(result):
            return {self.group: gr.update(visible=False)}
        heads = [("mean over heads", MEAN_HEAD)] + [(f"head {h}", h) for h in range(result.num_heads)]
        steps = step_count(result)
        return {
            self.group: gr.update(visible=True),
            self.step: gr.update(minimum=1, maximum=max(steps, 2), value=1, interactive=steps > 1),
            self.layer: gr.update(maximum=max(result.num_layers - 1, 1), value=result.num_layers // 2),
            self.head: gr.update(choices=heads, value=MEAN_HEAD),
            **self._draw(result, 0, result.num_layers // 2, None),
        }

    def redraw(self, step: Any, layer: Any, head: Any, request: gr.Request) -> dict[Any, Any]:
        """The slider or the layer/head moved: redraw from the kept result (the model does not run)."""
        result = self.store.get(session_id(request), TASK)
        if result is None or not has_steps(result):
            return {self.group: gr.update(visible=False)}
        index = _clamp(step, 1, step_count(result)) - 1
        chosen_head = _clamp(head, MEAN_HEAD, result.num_heads - 1)
        return self._draw(result, index, _clamp(layer, 0, result.num_layers - 1),
                          None if chosen_head == MEAN_HEAD else chosen_head)

    def _draw(self, result: Any, step: int, layer: int, head: int | None) -> dict[Any, Any]:
        with user_errors():
            candidates = plot_step_candidates(result, step)
            try:
                strip = str(step_strip_html(result, step, layer, head))
                by_layer = gr.update(value=plot_step_attention_by_layer(result, step, head, layer), visible=True)
            except ValueError as error:  # the predicting position fell outside the kept attention window
                strip, by_layer = f"<p>{html.escape(str(error))}</p>", gr.update(visible=False)
        return {self.candidates: candidates, self.strip: strip, self.layers: by_layer}


def _clamp(value: Any, low: int, high: int) -> int:
    """A whole number in [low, high] from whatever the page sent (None, float, NaN → low)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return low
    return max(low, min(high, number))


def build_tab(service: Any, store: ResultStore | None = None) -> AttentionPanel:
    """The Generate tab's components and events, built into the current Blocks context; returns its panel."""
    store = store or DEFAULT_STORE
    stop_requests = StopRequests()
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=3, max_length=limits.MAX_INPUT_CHARS, elem_id="gen-prompt",
                                placeholder="Type the beginning of a text; the model continues it.")
            with gr.Accordion("Sampling settings", open=False, elem_classes=["atlas-technical"]):
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
    steps = StepView(store)
    panel = AttentionPanel(TASK, store, elem_prefix="gen", service=service)

    def generate(prompt, max_new_tokens, temperature, top_k, top_p, seed, request: gr.Request,
                 progress=gr.Progress()):  # noqa: B008 (Gradio injects the progress tracker)
        yield from run_generation(service, store, prompt, max_new_tokens, temperature, top_k, top_p, seed,
                                  request, progress, stop_requests)

    def start(request: gr.Request) -> dict[Any, Any]:
        """Generate was pressed: Stop counts from now on; the previous run's text and steps go."""
        stop_requests.expect(session_id(request))
        return {**steps.hide(), text: ""}

    def finish_now(request: gr.Request):
        if stop_requests.stop(session_id(request)):
            return STOPPING_MESSAGE
        gr.Info(translate(NOTHING_TO_STOP, language_of(request)))  # a toast: not an output the page translates
        return gr.update()

    def forget_stop(request: gr.Request) -> None:
        stop_requests.forget(session_id(request))

    started = run.click(start, outputs=steps.outputs() + [text], **VIEW_EVENT)
    event = panel.blank_after(started).then(
        generate, inputs=inputs, outputs=[result_json, text], api_name="generate",
        api_description="Continue a prompt. Returns {'text': continuation} (JSON) and the text.",
        preprocess=False, **MODEL_EVENT)  # raw values: the handler checks them all, by name
    panel.refresh_after(event)
    event.success(steps.refresh, outputs=steps.outputs(), **VIEW_EVENT)
    panel.explain_failures(event)
    event.failure(forget_stop, **VIEW_EVENT)
    # Stop ends generation within one token, and the attention of the text so far is still captured and drawn.
    # Its own group with no limit: it only sets a flag, and must never wait behind redraws (the logit lens runs the
    # model inside one) while the text keeps growing.
    stop.click(finish_now, outputs=[panel.info], **{**VIEW_EVENT, "concurrency_id": "stop", "concurrency_limit": None})
    return panel


if __name__ == "__main__":
    run_alone(build_tab, "Generate")
