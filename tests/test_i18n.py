"""The interface-language machinery (demos/i18n): who gets which language, and that translation touches only the
page's own words: never the visitor's text, the model's output, tokens or model names."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import plotly.graph_objects as go
import pytest

from demos import i18n
from demos.i18n import (SESSIONS, language_from_request, language_of, translate, translate_figure, translate_html,
                        translate_outputs, translating)


@pytest.fixture(autouse=True)
def catalogs() -> None:
    i18n.load_catalogs()


def _request(session: str = "s", lang: str | None = None, accept: str = "") -> SimpleNamespace:
    return SimpleNamespace(session_hash=session, query_params={"lang": lang} if lang else {},
                           headers={"accept-language": accept})


def test_the_language_comes_from_the_address_then_the_browser_then_english() -> None:
    assert language_from_request(_request(lang="zh")) == "zh"
    assert language_from_request(_request(lang="en", accept="zh-CN,zh;q=0.9")) == "en"
    assert language_from_request(_request(accept="zh-TW,zh;q=0.9")) == "zh"
    assert language_from_request(_request(accept="fr-FR,en;q=0.8")) == "en"
    assert language_from_request(_request(lang="<script>")) == "en"     # anything else: not a language
    assert language_of(_request("never-seen")) == "en"


def test_english_passes_through_untouched() -> None:
    figure = go.Figure(go.Heatmap(z=[[1]]), layout={"title": {"text": "layer 3"}})
    assert translate("Layer", "en") == "Layer"
    assert translate_figure(figure, "en").layout.title.text == "layer 3"
    assert translate_outputs({"x": 1}, "en") == {"x": 1}


def test_figure_words_are_translated_and_tokens_kept() -> None:
    figure = go.Figure(go.Heatmap(z=[[1, 2]], x=["#0 the", "#1 cat"], y=["#0 the"]))
    figure.update_layout(title={"text": "layer 3"}, xaxis={"ticktext": ["the", "cat"], "tickvals": ["#0 the", "#1 cat"],
                                                            "title": {"text": "attention weight"}})
    translated = translate_figure(figure, "zh")
    assert translated.layout.title.text == "第 3 层"
    assert list(translated.layout.xaxis.ticktext) == ["the", "cat"]   # tokens stay
    assert translated.layout.xaxis.title.text != "attention weight"


def test_token_spans_and_content_components_are_never_translated() -> None:
    markup = '<p>Generate</p><span class="atlas-tok" title="t">Generate</span>'
    assert translate_html(markup, "zh") == '<p>生成</p><span class="atlas-tok" title="t">Generate</span>'
    with gr.Blocks():
        answer, info = gr.Textbox(elem_id="x-output"), gr.Markdown(elem_id="x-info")
    assert translate_outputs({answer: "Generate", info: "Generate"}, "zh") == {answer: "Generate", info: "生成"}
    assert translate_outputs(("Generate", "Generate"), "zh", [answer, info]) == ("Generate", "生成")
    assert translate_outputs({"label": "Generate"}, "zh", [gr.JSON()]) == {"label": "Generate"}  # JSON is content
    with gr.Blocks():
        side = gr.Radio(["decoder"])
    update = translate_outputs({side: gr.update(choices=["decoder"], value="decoder", label="Generate")}, "zh")[side]
    assert update["value"] == "decoder" and update["choices"] == ["decoder"] and update["label"] == "生成"


def test_a_wrapped_handler_answers_in_the_visitors_language_errors_too() -> None:
    SESSIONS.set("zh-visitor", "zh")
    with gr.Blocks():
        info = gr.Markdown()

    def handler(text: str, request: gr.Request) -> str:
        if text == "bad":
            raise gr.Error("Generate")
        return "Generate"

    def stream(request: gr.Request):
        yield "Generate"
        yield "Translate"

    wrapped, streamed = translating(handler, [info]), translating(stream, [info])
    assert wrapped("ok", _request("zh-visitor")) == "生成"
    assert wrapped("ok", _request("en-visitor")) == "Generate"
    with pytest.raises(gr.Error, match="生成"):
        wrapped("bad", _request("zh-visitor"))
    assert list(streamed(_request("zh-visitor"))) == ["生成", "翻译"]
    assert translating(lambda text: text, [info])("Generate") == "Generate"   # no request: left as it is
