"""简体中文 in headless Chromium on the real embedded Gemma: `?lang=zh` shows every tab, control, caption and view
in Chinese; no English UI word is left (model tokens, model names and a few technical names excepted), and the
switch brings English back."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_MS = 420_000
REDRAW_MS = 60_000
# Names that stay as they are in Chinese text (model names, formats, technical terms a Chinese course keeps)
ALLOWED = {"gemma", "google", "minilm", "bert", "gpt", "marian", "bertviz", "rope", "softmax", "logit", "json",
           "html", "png", "svg", "api", "cpu", "gpu", "cuda", "plotly", "gradio", "sentencepiece", "wordpiece",
           "bpe", "mlp", "rmsnorm", "layernorm", "relu", "gelu", "tanh", "eos", "bos", "cls", "sep", "pad", "unk",
           "atlas", "transformer", "distilbert", "opus", "helsinki", "sdpa", "eager", "fp32", "bf16", "float32",
           "abnar", "zuidema", "zhao", "utf", "url", "gguf", "safetensors", "gqa", "log", "exp"}
WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"|`[^`]*`|‘[^’]*’|Attention Atlas|[\w.-]+/[\w.-]+")  # quotes, names, paths
TABS = [  # (tab name in Chinese, prefix, input fields, run button)
    ("生成", "gen", {"#gen-prompt textarea": "今天天气很好，我想"}, "#gen-run"),
    ("问答", "qa", {"#qa-context textarea": "北京是中国的首都，也是全国的政治和文化中心。",
                  "#qa-question textarea": "中国的首都是哪里？"}, "#qa-run"),
    ("翻译", "tr", {"#tr-text textarea": "机器学习正在改变世界。"}, "#tr-run"),
    ("情感分析", "sent", {"#sent-text textarea": "这部电影太好看了，我非常喜欢！"}, "#sent-run"),
]
# What the page writes for the visitor, not what the model or the visitor wrote (inputs, outputs, prompt, ticks)
UI_TEXT_JS = """(prefix) => {
  const ui = '[role="tab"], label, [data-testid="block-info"], button, .prose, .gtitle, .annotation-text, '
      + '.g-xtitle, .g-ytitle, .cbtitle, .legendtext, [id$="-info"]';
  const skip = 'textarea, input, .atlas-tok, .atlas-token, .atlas-content, .atlas-context, .atlas-prompt-tokens, '
      + '[id$="-prompt-panel"], [id$="-output"], [id$="-json"], table, .gallery, .xtick, .ytick, .modebar, iframe, '
      + 'footer, #language-switch, [id$="-export-links"] a, style, script, '
      + '[data-testid="status-tracker"], .progress-text, .meta-text, .meta-text-center, .eta-bar';  // Gradio's own
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    const text = node.textContent.trim();
    if (text && parent && parent.closest(ui) && !parent.closest(skip)) out.push(text);
  }
  return out;
}"""


def english_words(texts: list[str]) -> set[str]:
    words = set()
    for text in texts:
        for word in WORD.findall(QUOTED.sub(" ", text)):
            if word.lower().strip("'-") not in ALLOWED:
                words.add(word)
    return words


def _view_labels(page: Any, prefix: str) -> list[str]:
    """The labels the View menu offers (opens it, reads it, closes it by clicking the info line)."""
    page.locator(f"#{prefix}-view input").click()
    labels = [text.replace("✓", "").strip() for text in page.get_by_role("option").all_text_contents()]
    page.locator(f"#{prefix}-info").click()
    return labels


def open_chinese_page(browser: Any, url: str, tab: str) -> tuple[Any, Any, list[str]]:
    """(context, page, console errors) of the app opened with ?lang=zh, once the tab named `tab` shows in Chinese."""
    context = browser.new_context(viewport={"width": 1280, "height": 1100}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{url}?lang=zh", timeout=60_000)
    page.wait_for_selector("#gen-run", timeout=60_000)
    page.wait_for_function(f"() => [...document.querySelectorAll('[role=tab]')].some(t => t.innerText === '{tab}')",
                           timeout=30_000)
    return context, page, errors


def test_chinese_interface_has_no_english_left(browser: Any, embedded_app: Any) -> None:
    context, page, errors = open_chinese_page(browser, embedded_app.url, "生成")
    left: dict[str, set[str]] = {}
    for tab, prefix, fields, run in TABS:
        page.get_by_role("tab", name=tab, exact=True).click()
        for selector, text in fields.items():
            page.locator(selector).fill(text)
        page.click(run)
        page.wait_for_selector(f"#{prefix}-plot .main-svg", timeout=RUN_MS)
        for label in _view_labels(page, prefix):
            if page.locator(f"#{prefix}-view input").input_value() != label:
                page.locator(f"#{prefix}-view input").click()
                page.get_by_role("option", name=re.compile(re.escape(label) + "$")).click()
            page.wait_for_timeout(400)
            page.wait_for_function(f"() => !document.querySelector('#{prefix}-info')?.innerText.includes('⏳')",
                                   timeout=REDRAW_MS)
            page.wait_for_timeout(600)
            found = english_words(page.evaluate(UI_TEXT_JS, prefix))
            if found:
                left[f"{tab} / {label}"] = found
    page.get_by_role("tab", name="讲解", exact=True).click()
    page.wait_for_timeout(1500)
    if found := english_words(page.evaluate(UI_TEXT_JS, "ex")):
        left["讲解"] = found
    assert not left, "\n".join(f"{where}: {sorted(words)}" for where, words in left.items())
    assert errors == []
    page.get_by_text("English", exact=True).click()                  # the switch: the page reloads in English
    page.wait_for_function("() => [...document.querySelectorAll('[role=tab]')].some(t => t.innerText === 'Generate')",
                           timeout=60_000)
    assert "lang=en" in page.url
    assert page.locator("#gen-prompt label").inner_text().strip().startswith("Prompt")
    # the reload cuts the old page's open event streams (AbortError): nothing else may have been said
    assert [error for error in errors if "AbortError" not in error] == []
    assert "Traceback" not in embedded_app.log_text(), embedded_app.log_text()[-3000:]   # no handler failed
    context.close()
