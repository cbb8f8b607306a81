"""Explain tab: renders every step from the service, turns mistakes into gr.Error, and serves api_name="explain"."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import gradio as gr
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from explain_models import SENTENCE, tiny_bert, tiny_gemma  # noqa: E402

from demos.explain import INITIAL_MAX_LAYER, NUM_STEPS, build_tab, explain_json, render_explanation  # noqa: E402
from demos.explain import slider_ranges  # noqa: E402
from service.errors import InvalidInputError  # noqa: E402
from service.explain import explain_attention  # noqa: E402


class TinyExplainService:
    """The two ModelService methods the tab uses, on tiny models (default = tiny Gemma, minilm = tiny BERT)."""

    def __init__(self) -> None:
        self.models = {"default": tiny_gemma(), "minilm": tiny_bert()}
        self.lock = threading.Lock()

    def explain_models(self) -> list[str]:
        return ["default", "minilm"]

    def explain(self, text, layer, head, position, model="default"):
        if model not in self.models:
            raise InvalidInputError(f"unknown model {model!r}")
        explained, tokenizer = self.models[model]
        return explain_attention(explained, tokenizer, text, layer, head, position, f"tiny-{model}", lock=self.lock)


@pytest.fixture(scope="module")
def service():
    return TinyExplainService()


def test_the_tab_renders_card_tokens_verdict_json_and_five_steps(service):
    outputs = render_explanation(service, "the <b>cat</b> sat on the mat", "default", 1, 2, -1)
    card, tokens, summary, payload = outputs[:4]
    steps = outputs[4:4 + 2 * NUM_STEPS]
    assert "<svg" in card and "Gemma 3" in card
    assert "<b>" not in tokens and "cat" in tokens
    assert summary.startswith("**✓") and payload["passed"] is True
    for index in range(NUM_STEPS):
        markdown, figure = steps[2 * index], steps[2 * index + 1]
        assert markdown.startswith(f"### {index + 1}.") and "$$" in markdown and figure.data
    layer_update, head_update, position_update = outputs[-3:]
    assert layer_update["maximum"] == 2 and head_update["maximum"] == 3
    assert position_update["value"] == len(payload["tokens"]) - 1


def test_the_encoder_contrast_model_renders_too(service):
    outputs = render_explanation(service, SENTENCE, "minilm", 0, 1, 2)
    assert outputs[3]["family"] == "bert" and "bidirectional" in outputs[2]


@pytest.mark.parametrize(("text", "layer", "head", "position", "message"), [
    ("", 0, 0, 0, "empty"),
    (SENTENCE, 9, 0, 0, r"layer must be in \[0, 2\], got 9\. The model has 3 layers"),
    (SENTENCE, 0, 0, 40, r"position must be in \[0, 13\], got 40\. The text has 14 tokens"),
    (SENTENCE, 0, 0.5, 0, "head must be a whole number"),
    (SENTENCE, 0, 0, None, "position must be a whole number"),
])
def test_user_mistakes_become_gr_error(service, text, layer, head, position, message):
    with pytest.raises(gr.Error, match=message):
        render_explanation(service, text, "default", layer, head, position)


def test_api_json_has_tokens_rows_and_difference(service):
    payload = explain_json(service, SENTENCE, 1, 0, 5)
    assert payload["tokens"][0] == "<bos>" and len(payload["recomputed"]) == len(payload["model"]) == 14
    assert payload["max_abs_diff"] < 1e-4 and payload["position"] == 5


def test_explain_endpoint_is_registered_with_text_layer_head_position(service):
    with gr.Blocks() as demo:
        build_tab(service)
    config = demo.get_config_file()
    endpoints = {dependency.get("api_name"): dependency for dependency in config["dependencies"]}
    assert "explain" in endpoints
    info = demo.get_api_info()
    parameters = [parameter["parameter_name"] for parameter in info["named_endpoints"]["/explain"]["parameters"]]
    assert parameters == ["text", "layer", "head", "position"]


def test_explain_api_answers_through_gradio_client(service):
    from gradio_client import Client

    with gr.Blocks() as demo:
        build_tab(service)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        payload = client.predict(SENTENCE, 2, 1, -1, api_name="/explain")
        assert payload["passed"] is True and payload["layer_type"] == "sliding:4" and len(payload["tokens"]) == 14
        with pytest.raises(Exception, match=r"position must be in \[0, 13\], got 99"):
            client.predict(SENTENCE, 0, 0, 99, api_name="/explain")
    finally:
        demo.close()


def test_sliders_show_the_models_real_ranges_before_the_first_run():
    class ShapeService:
        def explain_models(self):
            return ["default", "minilm"]

        def explain_shape(self, model="default"):
            return {"default": (18, 4), "minilm": None}[model]

    with gr.Blocks() as demo:
        build_tab(ShapeService())
    layer, head = (next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == elem_id)
                   for elem_id in ("explain-layer", "explain-head"))
    assert (layer.maximum, layer.info, head.maximum, head.info) == (17, "0–17", 3, "0–3")
    unknown_layer, unknown_head = slider_ranges(ShapeService(), "minilm")
    assert unknown_layer["maximum"] == INITIAL_MAX_LAYER and "first run" in unknown_layer["info"]
    assert slider_ranges(object(), "default")[0]["maximum"] == INITIAL_MAX_LAYER  # a service without the hint


def _explain_tab_text(demo: gr.Blocks) -> str:
    """Every label, choice, info and Markdown value of the built tab, as one string."""
    parts: list[str] = []
    for block in demo.blocks.values():
        for name in ("label", "info", "value"):
            value = getattr(block, name, None)
            if isinstance(value, str):
                parts.append(value)
        for choice in getattr(block, "choices", None) or []:
            parts.extend(str(item) for item in (choice if isinstance(choice, (tuple, list)) else [choice]))
    return "\n".join(parts)


def test_the_tab_names_the_model_the_profile_really_explains():
    """Regression: the model choice said "embedded Gemma-3-270M" on every profile (the hub one explains GPT-2)."""
    from service import ModelService

    tiny = ModelService(profile="tiny")                    # its generation model is a tiny GPT-2
    with gr.Blocks() as demo:
        build_tab(tiny)
    text = _explain_tab_text(demo)
    assert tiny.model_name("generation") in text
    assert "gemma" not in text.lower()
