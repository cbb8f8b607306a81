"""The page's own Chinese (demos/i18n/zh_ui.py): patterns compile and fill, phrases are Chinese, representative
texts come out right, and nothing on the tiny app's page with Latin words is left untranslated. Fast."""

from __future__ import annotations

import re
import string

import pytest

from demos.i18n import CATALOGS, load_catalogs, translate, translate_html, translate_value
from demos.i18n import zh_ui

load_catalogs()

# Names and code that stay as they are in the Chinese texts.
ALLOWED = {
    "Attention", "Atlas", "Gemma", "MiniLM", "BERT", "bertviz", "RoPE", "JSON", "HTML", "PNG", "SVG", "GQA", "SentencePiece", "WordPiece", "BPE", "exp",
    "Logit", "logit", "Rollout", "Temperature", "Top", "top", "nucleus", "English", "Language", "Transformer",
    "GGUF", "safetensors", "CPU", "Marian", "DistilBERT", "GPT", "LayerNorm", "RMSNorm", "MLP", "Hugging", "Face", "HF_HUB_OFFLINE", "PyTorch", "CUDA", "GPU", "NVIDIA", "torch",
    "cpu", "device", "profile", "hub", "embedded", "pip", "install", "requirements", "txt", "cos", "sin",
    "true", "false", "zero_shot", "max_new_tokens", "temperature", "top_k", "top_p", "seed", "layer", "head",
    "position", "eager", "id", "output_attentions", "W_O", "softmax", "FFN", "Pre", "Post", "Norm", "pre", "norm", "qa", "sentiment", "translation", "gemma", "google",
}
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z_]+")


def leftover_english(text: str) -> list[str]:
    """Latin words in `text` outside code spans, markup and the allowed names."""
    plain = re.sub(r"`[^`]*`|<[^>]+>|\{[^}]*\}|\d+k|L\d+|[\w.]+(?:[-/][\w.]+)+", "", text)  # code, model names
    return [word for word in LATIN_WORD.findall(plain) if word not in ALLOWED]


def zh(text: str) -> str:
    return translate(text, "zh")


@pytest.mark.parametrize("pattern, template", zh_ui.PATTERNS)
def test_patterns_compile_and_fill(pattern: str, template: str) -> None:
    compiled = re.compile(pattern, re.DOTALL)
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    assert fields <= set(compiled.groupindex), f"{template!r} names fields {fields - set(compiled.groupindex)}"
    assert not leftover_english(re.sub(r"\{[^}]*\}", "", template)), template


def test_phrases_are_chinese() -> None:
    bad = [(english, chinese) for english, chinese in zh_ui.PHRASES.items()
           if not chinese.strip() or leftover_english(chinese)
           or english not in ("English", "Top-k", "Top-p") and not re.search(r"[\u4e00-\u9fff]", chinese)]
    assert not bad


def test_info_line_keeps_numbers_and_model_name() -> None:
    line = ("**Model:** `google/gemma-3-270m` (decoder) · 18 layers × 4 heads · 752 decoder tokens\n\n"
            "Grouped-query attention: 4 query heads share 1 key/value head(s).\n\n"
            "Time: model 5.43 s · attention capture 3.73 s\n\n"
            "⚠️ Attention shows the last 752 of 900 tokens; rows no longer sum to 1 where attention went to the 148 "
            "earlier tokens that are hidden.")
    assert zh(line) == (
        "**模型：** `google/gemma-3-270m`（解码器）· 18 层 × 4 个头 · 752 个解码器词元\n\n"
        "分组查询注意力（GQA）：4 个查询头共享 1 个键/值头。\n\n"
        "用时：模型 5.43 秒 · 注意力捕获 3.73 秒\n\n"
        "⚠️ 注意力只显示 900 个词元中的最后 752 个；注意力流向被隐藏的前 148 个词元的行，其权重之和不再为 1。")


def test_validation_errors_keep_numbers() -> None:
    from service import validation
    from service.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as error:
        validation.check_text("x" * 5000, "text to translate", 2000)
    assert zh(str(error.value)) == "待翻译的文本长 5000 个字符，超过上限 2000。请缩短后重试。"
    with pytest.raises(InvalidInputError) as error:
        validation.check_sampling(0, 0, 0, 1, 0)
    assert zh(str(error.value)) == "max_new_tokens（最多生成的新词元数）必须在 [1, 200] 范围内，实际为 0。"
    # the field name is whichever catalog names "layer" (zh_views may too)
    assert zh("layer must be in [0, 17], got 20. The model has 18 layers.") == \
        f"{zh('layer')}必须在 [0, 17] 范围内，实际为 20。该模型有 18 层。"


def test_notices_and_messages() -> None:
    assert zh("Stopped on request after 5 of 30 new tokens; the attention shown is for the text written so far.") \
        == "应请求在生成 5/30 个新词元后停止；显示的是已生成文本的注意力。"
    assert zh("Input truncated to 512 tokens.") == "输入已截断为 512 个词元。"
    assert zh("queries 624–751 × keys 0–111") == "查询 624–751 × 键 0–111"
    assert zh("last 16 positions (736–751)") == "最后 16 个位置（736–751）"
    assert zh("positions 0–31") == "位置 0–31"
    assert zh("Gemma-3-270M is ready.") == "Gemma-3-270M 已就绪。"
    html_text = translate_html('<p>12 tokens: <span class="atlas-seg">demonstration 2 · similarity 0.61 '
                               '(qa.en #12)</span></p><span class="atlas-tok">context</span>', "zh")
    assert "12 个词元：" in html_text and "示范样例 2 · 相似度 0.61（qa.en #12）" in html_text
    assert '<span class="atlas-tok">context</span>' in html_text  # tokens stay


def test_tiny_app_page_texts_are_translated() -> None:
    import gradio as gr

    import app
    from demos.i18n import _TEXT_FIELDS
    from service import ModelService

    demo = app.build_app(ModelService(profile="tiny"))
    left: list[str] = []

    def check(text: object) -> None:
        if isinstance(text, str) and text.strip():
            if leftover_english(translate_value(text, "zh")):
                left.append(text)

    for block in demo.blocks.values():
        if type(block).__name__ == "Api":  # gr.api endpoints: not on the page
            continue
        for field in _TEXT_FIELDS:
            check(getattr(block, field, None))
        if isinstance(block, (gr.Markdown, gr.HTML, gr.Button)):
            check(getattr(block, "value", None))
        for choice in getattr(block, "choices", None) or []:
            if isinstance(choice, (tuple, list)) and isinstance(choice[0], str):
                check(choice[0])
    assert not left, left


def test_link_notice_and_explain_lines() -> None:
    from demos import links

    notice = links.notice_markdown(links.parse_link({"tab": "ask", "layer": "abc", "view": "bad"}).problems)
    assert zh(notice) == ("**此链接中有无法使用的值**，这些值已改用默认值：\n"
                          f"- 视图不是 {', '.join(links.VIEWS_BY_KEY)} 之一；面板打开默认视图。\n"
                          f"- {zh('layer')}必须是 0 到 1023 之间的整数；改用默认值。")
    assert zh("**✓ matches the model (max |Δ| = 3.0e-08 &lt; 1e-4)** — google/gemma-3-270m, layer 5 (sliding:512), "
              "head 2, query token 7") == \
        "**✓ 与模型一致（最大 |Δ| = 3.0e-08 &lt; 1e-4）** — google/gemma-3-270m，第 5 层（滑动窗口 512），头 2，查询词元 7"
