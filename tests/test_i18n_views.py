"""简体中文 for the views (demos/i18n/zh_views.py): patterns are well formed, and every view drawn on tiny results
comes out with Chinese titles, captions, axis and colour-bar titles while tokens stay as they are."""

from __future__ import annotations

import html
import re
import string

import pytest

import demos.attention_panel as panel
from demos.i18n import CATALOGS, load_catalogs, translate_figure, translate_html
from service import ModelService

load_catalogs()                   # zh_ui, then zh_views (its phrases win where both have one), as the app loads them
from demos.i18n import zh_views  # noqa: E402

# names that stay English in Chinese text: models, libraries, symbols, formulas
ALLOWED = {"Gemma", "MiniLM", "Marian", "bertviz", "RoPE", "softmax", "logit", "Abnar", "Zuidema", "log", "id",
           "top", "GQA", "MLP", "amp", "quot"}
WORD = re.compile(r"[A-Za-z]{2,}")


def english_words(text: str) -> list[str]:
    text = re.sub(r"%\{[^}]*\}|<[^>]*>", " ", text)
    text = re.sub(r"tiny-[\w-]+|“[^”]*”", " ", html.unescape(text))   # model names; tokens in quotes
    return [word for word in WORD.findall(text) if word not in ALLOWED]


@pytest.mark.parametrize("pattern, template", zh_views.PATTERNS)
def test_every_pattern_compiles_and_its_template_names_its_groups(pattern: str, template: str) -> None:
    groups = set(re.compile(pattern).groupindex)
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    assert fields == groups, (pattern, template)


def test_a_wrapped_caption_sentence_is_translated_whole() -> None:
    from viz.head_stats import ROLLOUT_MEANING, _wrap
    from viz.labels import escape_text
    caption = _wrap(escape_text(ROLLOUT_MEANING)) + "<br>grey = masked (this token cannot see that one)"
    assert "<br>" in caption
    translated = CATALOGS["zh"].translate(caption)
    assert not english_words(translated), translated
    assert translated.startswith("注意力展开") and translated.endswith("灰色 = 被遮蔽（这个词元看不到那个词元）")


@pytest.fixture(scope="module")
def results() -> list:
    tiny, few = ModelService("tiny"), ModelService("tiny-fewshot")
    made = []
    for service in (tiny, few):
        made += [service.generate("The quick brown fox jumps", max_new_tokens=4, min_new_tokens=4, candidates=3),
                 service.answer("Paris is the capital of France.", "What is the capital of France?"),
                 service.translate("The cat sat on the mat."), service.translate("今天天气很好"),
                 service.classify("A wonderful film, I loved it.")]
    return made


def figure_texts(figure) -> list[str]:
    layout = figure.layout
    texts = [layout.title.text] if layout.title and layout.title.text else []
    texts += [annotation.text for annotation in layout.annotations or () if annotation.text]
    for name in layout.to_plotly_json():
        if name.startswith(("xaxis", "yaxis")) and layout[name].title and layout[name].title.text:
            texts.append(layout[name].title.text)
    if layout.coloraxis and layout.coloraxis.colorbar and layout.coloraxis.colorbar.title:
        texts.append(layout.coloraxis.colorbar.title.text or "")
    texts += [trace.hovertemplate for trace in figure.data if getattr(trace, "hovertemplate", None)]
    return texts


def token_ticks(figure) -> list[str]:
    """Tick labels that are tokens (not "layer 3", "head 1" or a segment name)."""
    ticks = []
    for name in figure.layout.to_plotly_json():
        if name.startswith(("xaxis", "yaxis")) and figure.layout[name].ticktext:
            ticks += [str(tick) for tick in figure.layout[name].ticktext]
    return ticks


TOKEN_SPAN = re.compile(r'<span class="atlas-token" style="[^"]*" title="[^"]*">(.*?)</span>')


def test_every_view_of_every_task_comes_out_in_chinese(results) -> None:
    left = []
    for result in results:
        for view in panel.available_views(result):
            pick = panel.selection_for(result, view)
            if view.pending is not None:
                continue
            if view.target == "plot":
                english = view.draw(result, pick)
                before = token_ticks(english)
                figure = translate_figure(view.draw(result, pick), "zh")
                after = token_ticks(figure)
                for old, new in zip(before, after):
                    if new != old:   # only the narrow patterns and segment names may change a tick
                        assert re.fullmatch(r"(第 \d+ 层|头 \d+|.*[\u4e00-\u9fff].*)", new), (view.key, old, new)
                        assert not old.startswith(("#", "␣")), (view.key, old, new)
                left += [(view.key, text) for text in figure_texts(figure) if english_words(text)]
            else:
                markup = str(view.draw(result, pick))
                translated = translate_html(markup, "zh")
                if view.key == "strip":
                    text = re.sub(r"<span class=\"atlas-token\"[^>]*>.*?</span>", "", translated)
                    left += [(view.key, node) for node in re.findall(r">([^<>]+)<", text) if english_words(node)]
    assert not left, left[:10]


def test_the_explain_figures_come_out_in_chinese() -> None:
    from test_explain_views import synthetic_result
    from viz.explain import explain_steps

    for options in ({}, {"passed": False, "window": 4, "tokens": 20},
                    {"family": "bert", "tokens": 10, "hidden": 48, "head_dim": 12, "heads": 4, "kv_heads": 4}):
        for step in explain_steps(synthetic_result(**options)):
            figure = translate_figure(step.figure, "zh")
            texts = figure_texts(figure) + [trace.name for trace in figure.data if trace.name]
            left = [text for text in texts if english_words(re.sub(r"\b[A-Z]\b|h\(\d+\)", "", text))]
            assert not left, (step.number, left)


def test_a_token_strips_tokens_stay_as_they_are(results) -> None:
    for result in results:
        view = panel.VIEWS_BY_KEY["strip"]
        markup = str(view.draw(result, panel.selection_for(result, view)))
        assert TOKEN_SPAN.findall(translate_html(markup, "zh")) == TOKEN_SPAN.findall(markup)
