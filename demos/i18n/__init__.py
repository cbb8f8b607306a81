"""The interface language: English (the source) and 简体中文, per visitor, translated where the page gets its text.

The code keeps writing English. What a visitor sees passes through `translate` on its way out:
- the page's own texts (labels, help, placeholders, choices, Markdown and HTML blocks) when the page opens
  (`install_language(demo)`: one load event that updates every component for the visitor's language);
- everything a handler returns (info lines, notices, HTML, Plotly figures: titles, captions, axis titles, hovers)
  and the messages of the errors it raises: `install_language` wraps every handler that takes a gr.Request.
Model tokens and model names are never translated: figure tick labels go through exact phrases only, HTML text
inside token spans is left alone, and patterns keep what they capture (a token, a number, a model name) as it is.

The language of a visitor: `?lang=zh` / `?lang=en` in the address, else the browser's language (Accept-Language),
else English; the switch on the page reloads it with `?lang=`. Catalogs: demos/i18n/zh_*.py, each a dict of exact
English → Chinese and a list of (regex, template) patterns for texts with numbers or names in them. A text with no
entry stays English (tests/test_i18n*.py list what is left).
"""

from __future__ import annotations

import functools
import html
import inspect
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Literal

import gradio as gr

from demos import VIEW_EVENT
from viz.style import WORD_CELLS

Language = Literal["en", "zh"]
_CJK_END = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]$")
LANGUAGES: tuple[Language, ...] = ("en", "zh")
LANGUAGE_QUERY = "lang"
LANGUAGE_NAMES = {"en": "English", "zh": "简体中文"}
MAX_SESSIONS = 4096


class Catalog:
    """Exact phrases and (pattern, template) pairs of one language."""

    def __init__(self) -> None:
        self.phrases: dict[str, str] = {}
        self.patterns: list[tuple[re.Pattern[str], str]] = []

    def add(self, phrases: dict[str, str], patterns: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        self.phrases.update(phrases)
        self.patterns.extend((re.compile(pattern, re.DOTALL), template) for pattern, template in patterns)

    def exact(self, text: str) -> str | None:
        return self.phrases.get(text)

    def translate(self, text: str, depth: int = 0) -> str:
        """The text in this language: a phrase, a pattern (its parts translated in turn), or its pieces."""
        if not text or not text.strip():
            return text
        stripped = text.strip()
        if stripped in self.phrases:
            return text.replace(stripped, self.phrases[stripped])
        if stripped.endswith(".") and stripped[:-1] in self.phrases:   # a sentence whose phrase has no full stop
            chinese = self.phrases[stripped[:-1]]
            return text.replace(stripped, chinese + ("" if chinese.endswith(("。", "！", "？")) else "。"))
        if depth > 16:   # recursive patterns (lists) go one level per item
            return text
        for pattern, template in self.patterns:
            match = pattern.fullmatch(stripped)
            if match:
                parts = {name: (self.translate(value, depth + 1) if name.startswith("t_") else value)
                         for name, value in match.groupdict(default="").items()}
                return text.replace(stripped, template.format(**parts))
        for separator in ("<br>", "\n\n", "\n", " · ", "; ", ". "):
            if separator in stripped:
                return text.replace(stripped, self._pieces(stripped, separator, depth))
        return text

    def _pieces(self, text: str, separator: str, depth: int) -> str:
        """`text` translated piece by piece; sentences keep their full stop, and Chinese pieces join the Chinese
        way (。 with no space, ；)."""
        pieces = text.split(separator)
        if separator == ". ":
            pieces = [piece + "." for piece in pieces[:-1]] + pieces[-1:]
        translated = [self.translate(piece, depth + 1) if piece else piece for piece in pieces]
        if separator not in ("; ", ". "):
            return separator.join(translated)
        out = translated[0]
        for piece in translated[1:]:
            if _CJK_END.search(out):   # a Chinese piece: 。 and ； need no space after them
                out += ("；" if separator == "; " and not out.endswith(("。", "；")) else "") + piece
            else:                      # an English piece (a name, a number): as the source joined it
                out += (" " if separator == ". " else separator) + piece
        return out


CATALOGS: dict[Language, Catalog] = {"zh": Catalog()}


def load_catalogs() -> None:
    """The catalog modules add themselves (demos/i18n/zh_*.py)."""
    from demos.i18n import zh_lesson, zh_ui, zh_views  # noqa: F401


class SessionLanguages:
    """session → language, bounded (a preference, not a result: nothing else about the visitor)."""

    def __init__(self, capacity: int = MAX_SESSIONS) -> None:
        self._lock = threading.Lock()
        self._languages: OrderedDict[str, Language] = OrderedDict()
        self.capacity = capacity

    def set(self, session: str | None, language: Language) -> None:
        if not session:
            return
        with self._lock:
            self._languages[session] = language
            self._languages.move_to_end(session)
            while len(self._languages) > self.capacity:
                self._languages.popitem(last=False)

    def get(self, session: str | None) -> Language:
        with self._lock:
            return self._languages.get(session or "", "en")

    def known(self, session: str | None) -> bool:
        with self._lock:
            return (session or "") in self._languages

    def forget(self, session: str | None) -> None:
        with self._lock:
            self._languages.pop(session or "", None)


SESSIONS = SessionLanguages()


def language_from_request(request: Any) -> Language:
    """?lang= when it names a language, else the browser's first choice (Accept-Language), else English."""
    params = getattr(request, "query_params", None) or {}
    asked = str(params.get(LANGUAGE_QUERY, "")).strip().lower() if hasattr(params, "get") else ""
    if asked in LANGUAGES:
        return asked  # type: ignore[return-value]
    if asked.startswith("zh"):
        return "zh"
    headers = getattr(request, "headers", None) or {}
    accepted = str(headers.get("accept-language", "")) if hasattr(headers, "get") else ""
    first = accepted.split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def language_of(request: Any) -> Language:
    """The language of the visitor behind `request`: the one its page opened in, else what the request says
    (an event that runs as the page opens may come before the page's own language event)."""
    session = getattr(request, "session_hash", None)
    return SESSIONS.get(session) if SESSIONS.known(session) else language_from_request(request)


def translate(text: Any, language: Language) -> Any:
    """`text` in `language` (English passes through, as does anything that is not a string)."""
    if language == "en" or not isinstance(text, str):
        return text
    return CATALOGS[language].translate(text)


# --- what a handler returns -------------------------------------------------------------------------------------
_TEXT_FIELDS = ("label", "info", "placeholder")
_HTML_TEXT = re.compile(r"(^|>)([^<>]+)(?=<|$)")   # a text node: between tags, or before the first / after the last
# the visitor's and the model's own text in HTML, never translated: a token's span (atlas-tok: prompt and focus
# views; atlas-token: token strips), an answer (atlas-content), the context shown with it (atlas-context)
_TOKEN_SPAN = re.compile(r'<(span|p|div) class="atlas-(?:tok|token|content|context)\b[^"]*"[^>]*>'
                         r'(?:[^<]|<(?!/?\1\b)[^>]*>)*</\1>', re.DOTALL)
_MARKUP = re.compile(r"<[a-zA-Z/!]")


def translate_html(markup: str, language: Language) -> str:
    """Text between tags translated; text inside token spans (class atlas-tok) and attributes left alone."""
    if language == "en" or not markup:
        return markup
    catalog = CATALOGS[language]
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    shielded = _TOKEN_SPAN.sub(keep, markup)

    def text_node(match: re.Match[str]) -> str:
        raw = match.group(2)
        plain = html.unescape(raw)
        translated = catalog.translate(plain)
        return match.group(1) + (raw if translated == plain else html.escape(translated, quote=False))

    translated = _HTML_TEXT.sub(text_node, shielded)
    return re.sub("\x00(\\d+)\x00", lambda match: kept[int(match.group(1))], translated)


def translate_figure(figure: Any, language: Language) -> Any:
    """A Plotly figure with its titles, captions, axis titles, colour-bar titles, trace names and hovers translated
    (tick labels only where they are exact phrases: they are mostly tokens)."""
    if language == "en":
        return figure
    catalog = CATALOGS[language]
    layout = figure.layout
    if layout.title and layout.title.text:
        layout.title.text = catalog.translate(layout.title.text)
    for annotation in layout.annotations or ():
        if annotation.text:
            text = catalog.translate(annotation.text)
            # inline markup (a legend of coloured squares and names): the words between the tags, one by one
            annotation.text = translate_html(text, language) if "<span" in text else text
    for name in [key for key in layout.to_plotly_json() if key.startswith(("xaxis", "yaxis"))]:
        axis = layout[name]
        if axis.title and axis.title.text:
            axis.title.text = catalog.translate(axis.title.text)
        if axis.ticktext:
            axis.ticktext = [catalog.exact(str(tick)) or _pattern_only(catalog, str(tick)) for tick in axis.ticktext]
    for name in [key for key in layout.to_plotly_json() if key.startswith("coloraxis")]:   # coloraxis, coloraxis2
        colorbar = layout[name].colorbar
        if colorbar and colorbar.title and colorbar.title.text:
            colorbar.title.text = catalog.translate(colorbar.title.text)
    legend = getattr(layout, "legend", None)
    if legend is not None and legend.title and legend.title.text:
        legend.title.text = catalog.translate(legend.title.text)
    for trace in figure.data:
        if getattr(trace, "name", None):
            trace.name = catalog.translate(trace.name)
        if getattr(trace, "meta", None) == WORD_CELLS:   # cells hold words (role names), not tokens
            for field in ("text", "hovertext"):
                cells = getattr(trace, field, None)
                if cells is not None and not isinstance(cells, str):
                    setattr(trace, field, [[catalog.translate(str(cell)) for cell in row] for row in cells])
        if getattr(trace, "hovertemplate", None):
            trace.hovertemplate = _translate_hover(catalog, trace.hovertemplate)
        colorbar = getattr(trace, "colorbar", None)
        if colorbar is not None and colorbar.title and colorbar.title.text:
            colorbar.title.text = catalog.translate(colorbar.title.text)
    return figure


def _pattern_only(catalog: Catalog, tick: str) -> str:
    """A tick label through the patterns only ("layer 3", "head 1"): a token never matches one."""
    for pattern, template in catalog.patterns:
        match = pattern.fullmatch(tick)
        if match and template.count("{") <= 2:
            return template.format(**match.groupdict(default=""))
    return tick


def _translate_hover(catalog: Catalog, template: str) -> str:
    """Hover templates: the words between %{...} fields translated, the fields kept."""
    pieces = re.split(r"(%\{[^}]*\}|<br>|<extra>|</extra>)", template)
    return "".join(piece if re.fullmatch(r"%\{[^}]*\}|<br>|<extra>|</extra>", piece or "") or not piece.strip()
                   else _translate_piece(catalog, piece) for piece in pieces)


def _translate_piece(catalog: Catalog, piece: str) -> str:
    core = piece.strip()
    translated = catalog.translate(core)
    return piece.replace(core, translated) if translated != core else piece


def translate_value(value: Any, language: Language) -> Any:
    """Whatever a handler returns for one output: a string (Markdown / HTML), a figure, a gr.update dict."""
    if language == "en" or value is None:
        return value
    if isinstance(value, str):
        return translate_html(value, language) if _MARKUP.search(value) else translate(value, language)
    if hasattr(value, "layout") and hasattr(value, "data"):
        return translate_figure(value, language)
    if isinstance(value, dict) and value.get("__type__") == "update":
        updated = dict(value)
        for field in _TEXT_FIELDS:
            if isinstance(updated.get(field), str):
                updated[field] = translate(updated[field], language)
        if "value" in updated:
            updated["value"] = translate_value(updated["value"], language)
        if isinstance(updated.get("choices"), list):
            updated["choices"] = [_translate_choice(choice, language) for choice in updated["choices"]]
        return updated
    return value


def _translate_choice(choice: Any, language: Language) -> Any:
    """(label, value) choices get their label translated; bare choices are values and stay."""
    if isinstance(choice, (tuple, list)) and len(choice) == 2 and isinstance(choice[0], str):
        return (translate(choice[0], language), choice[1])
    return choice


# Components whose value is page text (translated); every other component's value is data: the visitor's or the
# model's own text (text boxes, answers, JSON), or a choice the server checks against its choices (radio, menu,
# slider): only its label, help, placeholder and choice labels are translated, never its value.
SHOWN_TEXT = (gr.Markdown, gr.HTML, gr.Plot, gr.Button)


def carries_content(component: Any) -> bool:
    """Whether a component's value is data, not page text (see SHOWN_TEXT)."""
    if not isinstance(component, SHOWN_TEXT):
        return True
    return str(getattr(component, "elem_id", "") or "").endswith("-json")


def _content_update(value: Any, language: Language) -> Any:
    """A data component's output: an update has its label, help, placeholder and choice labels translated, its
    value kept; a bare value is kept."""
    if isinstance(value, dict) and value.get("__type__") == "update":
        return {**translate_value({key: item for key, item in value.items() if key != "value"}, language),
                **({"value": value["value"]} if "value" in value else {})}
    return value


def translate_outputs(outputs: Any, language: Language, components: list[Any] | None = None) -> Any:
    """A handler's return value for its output `components`: {component: value}, a tuple/list of values, or one
    value. Components that carry content (carries_content) pass through as they are."""
    if language == "en":
        return outputs
    components = list(components or [])

    def one(component: Any, value: Any) -> Any:
        if component is not None and carries_content(component):
            return _content_update(value, language)
        return translate_value(value, language)

    if isinstance(outputs, dict) and outputs and all(hasattr(key, "_id") for key in outputs):
        return {key: one(key, value) for key, value in outputs.items()}
    if len(components) == 1:
        return one(components[0], outputs)
    if isinstance(outputs, (tuple, list)) and len(outputs) == len(components):
        translated = [one(component, value) for component, value in zip(components, outputs)]
        return tuple(translated) if isinstance(outputs, tuple) else translated
    return outputs


def _translated_error(error: gr.Error, language: Language) -> gr.Error:
    return gr.Error(translate(str(error.message), language), duration=error.duration,
                    title=translate(error.title, language) if error.title else error.title,
                    print_exception=False)


# --- every handler --------------------------------------------------------------------------------------------
def _request_index(fn: Callable[..., Any]) -> int | None:
    """Position of the gr.Request parameter of `fn`, or None."""
    from gradio import utils

    hints = utils.get_type_hints(fn)
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    for index, parameter in enumerate(parameters):
        if hints.get(parameter.name) in (gr.Request, gr.Request | None):
            return index
    return None


def translating(fn: Callable[..., Any], outputs: list[Any] | None = None) -> Callable[..., Any]:
    """`fn` (a handler of `outputs`) whose outputs and gr.Error messages come in the visitor's language."""
    index = _request_index(fn)
    if index is None or getattr(fn, "__atlas_translating__", False):
        return fn

    def language(args: tuple, kwargs: dict) -> Language:
        request = args[index] if index < len(args) else kwargs.get(list(inspect.signature(fn).parameters)[index])
        return language_of(request)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            chosen = language(args, kwargs)
            try:
                for returned in fn(*args, **kwargs):
                    yield translate_outputs(returned, chosen, outputs)
            except gr.Error as error:
                if chosen == "en":
                    raise
                raise _translated_error(error, chosen) from None
        wrapper: Callable[..., Any] = generator
    elif inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        return fn   # the app has none; leave them as they are
    else:
        @functools.wraps(fn)
        def function(*args: Any, **kwargs: Any) -> Any:
            chosen = language(args, kwargs)
            try:
                return translate_outputs(fn(*args, **kwargs), chosen, outputs)
            except gr.Error as error:
                if chosen == "en":
                    raise
                raise _translated_error(error, chosen) from None
        wrapper = function
    wrapper.__atlas_translating__ = True  # type: ignore[attr-defined]
    return wrapper


# --- the page's own texts -------------------------------------------------------------------------------------
def component_texts(component: Any, language: Language) -> dict[str, Any] | None:
    """The gr.update that shows `component`'s own texts in `language` (None when nothing changes)."""
    changes: dict[str, Any] = {}
    for field in _TEXT_FIELDS:
        text = getattr(component, field, None)
        if isinstance(text, str) and text:
            translated = translate(text, language)
            if translated != text:
                changes[field] = translated
    value = getattr(component, "value", None)
    if isinstance(component, (gr.Markdown, gr.HTML, gr.Button)) and isinstance(value, str) and value:
        translated = translate_value(value, language)
        if translated != value:
            changes["value"] = translated
    headers = getattr(component, "headers", None) if isinstance(component, gr.Dataset) else None
    if isinstance(headers, list) and headers:   # the examples' column names
        translated_headers = [translate(header, language) for header in headers]
        if translated_headers != headers:
            changes["headers"] = translated_headers
    choices = getattr(component, "choices", None)
    if isinstance(choices, list) and choices:
        translated_choices = [_translate_choice(choice, language) for choice in choices]
        if translated_choices != choices:
            changes["choices"] = translated_choices
    return gr.update(**changes) if changes else None


def install_language(demo: gr.Blocks, switch: gr.Radio) -> None:
    """Translate every handler's outputs, and the page's own texts when it opens; `switch` picks the language."""
    load_catalogs()
    translatable = [block for block in demo.blocks.values()  # the components with a text some language changes
                    if isinstance(block, (gr.components.Component, gr.Tab, gr.Accordion)) and block is not switch
                    and any(component_texts(block, language) is not None for language in LANGUAGES if language != "en")]

    def open_page(request: gr.Request) -> dict[Any, Any]:
        language = language_from_request(request)
        SESSIONS.set(getattr(request, "session_hash", None), language)
        updates: dict[Any, Any] = {switch: gr.update(value=language)}
        if language != "en":
            for component in translatable:
                texts = component_texts(component, language)
                if texts is not None:
                    updates[component] = texts
        return updates

    for block_fn in demo.fns.values():
        if block_fn.fn is not None:
            block_fn.fn = translating(block_fn.fn, list(block_fn.outputs))
    demo.load(open_page, outputs=[switch, *translatable],
              **{**VIEW_EVENT, "show_progress": "hidden"})
    switch.input(None, inputs=[switch], js=SWITCH_JS)


SWITCH_JS = f"""(language) => {{
  const params = new URLSearchParams(window.location.search);
  params.set('{LANGUAGE_QUERY}', language);
  params.delete('forgotten');
  window.location.search = params.toString();
}}"""


def build_language_switch() -> gr.Radio:
    """English / 简体中文 (built into the current Blocks context); changing it reloads the page in that language."""
    return gr.Radio([(LANGUAGE_NAMES[code], code) for code in LANGUAGES], value="en", label="Language · 语言",
                    elem_id="language-switch", container=False, interactive=True)
