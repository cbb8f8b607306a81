"""Shareable links: the one place that knows the link format, reads it when a page opens and builds it again.

A link is the page's address plus a query: `?tab=translate&text=Hello&direction=en-zh&view=heads&layer=3&head=1`.
  tab        generate | ask | translate | sentiment | explain | lesson (default generate)
  inputs     per tab: generate `prompt`; ask `context`, `question`; translate `text`, `direction` (auto | en-zh |
             zh-en); sentiment `text`; explain `text`; lesson `text` (the class's sentence; it starts the lesson)
  view       a key of demos.attention_panel.VIEWS (not for explain)
  layer      a whole number; for explain, its own layer slider; else the attention panel's
  head       the same, for the head
Every value is checked the way the tab checks its inputs (texts against service.limits' lengths, the direction
against service.limits.DIRECTIONS); a bad one is left out, the page says which (one fixed sentence per parameter,
never the value itself) and the defaults stand. Layer and head are clamped to the result by the panel itself
(attention_panel.selection_for) once the run is done. When a tab's texts are all there, the page presses the tab's
own Run button, so the run takes the same queue, concurrency group and fair turns as a click. Other parameters
(`forgotten` of demos/privacy.py, Gradio's own) are ignored here and never written into a link.

The components are found by their elem_ids (the ones the browser tests use), so the tab modules need not change.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import gradio as gr

from demos import VIEW_EVENT
from demos.attention_panel import VIEWS, VIEWS_BY_KEY
from service import limits

TAB, VIEW, LAYER, HEAD = "tab", "view", "layer", "head"
MAX_INDEX = 1023           # layers and heads a link may name (no model here has that many); the result clamps further
INDEX_PATTERN = re.compile(r"[0-9]{1,4}")
NOTICE_ID = "link-notice"
RUN_TARGET_ID = "link-run-target"
COPY_LABEL = "Copy link"
LINK_LABEL = "Link to this view (tab, inputs, view, layer, head)"
PROBLEMS_INTRO = "**This link had values that could not be used**, so the defaults stand for them:"


@dataclass(frozen=True)
class LinkInput:
    """One input a link may fill: its parameter name, the component's elem_id and how it is checked."""

    param: str
    elem_id: str
    max_chars: int = limits.MAX_INPUT_CHARS
    choices: tuple[str, ...] | None = None   # a choice (the direction), not a text
    required: bool = True                    # the tab runs only when every required text is there


@dataclass(frozen=True)
class LinkTab:
    """One tab a link may open: its name in links, its gr.Tab id, its Run button and inputs, and where view, layer
    and head go (the attention panel `{prefix}-view/-layer/-head`, or, for Explain, its own sliders)."""

    name: str
    task: str
    run: str
    inputs: tuple[LinkInput, ...]
    panel: str | None            # elem_id prefix of the tab's attention panel; None: no panel (Explain)
    layer: str = ""              # elem_id of the layer slider when there is no panel
    head: str = ""

    def control_ids(self) -> dict[str, str]:
        """{view/layer/head: elem_id} of the controls a link sets on this tab."""
        if self.panel is not None:
            return {VIEW: f"{self.panel}-view", LAYER: f"{self.panel}-layer", HEAD: f"{self.panel}-head"}
        return {param: elem_id for param, elem_id in ((LAYER, self.layer), (HEAD, self.head)) if elem_id}

    def params(self) -> list[str]:
        """The link's parameters for this tab, in the order a built link lists them."""
        return [TAB, *(item.param for item in self.inputs), *self.control_ids()]


TABS: tuple[LinkTab, ...] = (
    LinkTab("generate", "generation", "gen-run", (LinkInput("prompt", "gen-prompt"),), panel="gen"),
    LinkTab("ask", "qa", "qa-run", (LinkInput("context", "qa-context", limits.MAX_CONTEXT_CHARS),
                                    LinkInput("question", "qa-question")), panel="qa"),
    LinkTab("translate", "translation", "tr-run",
            (LinkInput("text", "tr-text"),
             LinkInput("direction", "tr-direction", choices=limits.DIRECTIONS, required=False)), panel="tr"),
    LinkTab("sentiment", "sentiment", "sent-run", (LinkInput("text", "sent-text"),), panel="sent"),
    LinkTab("explain", "explain", "explain-run", (LinkInput("text", "explain-text"),), panel=None,
            layer="explain-layer", head="explain-head"),
    LinkTab("lesson", "lesson", "lesson-start", (LinkInput("text", "lesson-text"),), panel=None),
)
TABS_BY_NAME = {tab.name: tab for tab in TABS}
TABS_BY_TASK = {tab.task: tab for tab in TABS}
DEFAULT_TAB = "generate"


@dataclass(frozen=True)
class Link:
    """A link's query, checked: only usable values are kept; `problems` says, in fixed sentences, what was not."""

    tab: str = DEFAULT_TAB
    inputs: dict[str, str] = field(default_factory=dict)   # param -> value
    view: str | None = None
    layer: int | None = None
    head: int | None = None
    problems: tuple[str, ...] = ()
    given: bool = False                                    # whether the query named anything of the link format

    @property
    def runs(self) -> bool:
        """Whether opening the link runs the tab: every text it needs is there."""
        spec = TABS_BY_NAME[self.tab]
        required = [item.param for item in spec.inputs if item.required]
        return bool(required) and all(param in self.inputs for param in required)


def parse_link(query: Mapping[str, Any] | None, tabs: set[str] | frozenset[str] | None = None) -> Link:
    """The link in `query` (request.query_params, or any mapping of strings), checked like any input.

    `tabs` limits the tab names to those the page has (Explain may be absent). Parameters outside the format are
    ignored; so are those that do not belong to the chosen tab."""
    query = query or {}
    names = set(TABS_BY_NAME) if tabs is None else set(tabs) & set(TABS_BY_NAME)
    format_params = {TAB, VIEW, LAYER, HEAD} | {item.param for tab in TABS for item in tab.inputs}
    given = any(param in query for param in format_params)
    problems: list[str] = []
    tab = DEFAULT_TAB
    raw_tab = _text(query.get(TAB))
    if raw_tab is not None:
        if raw_tab.strip().lower() in names:
            tab = raw_tab.strip().lower()
        else:
            listed = ", ".join(name for name in TABS_BY_NAME if name in names)
            problems.append(f"the tab is not one of {listed}, so the page opens on {DEFAULT_TAB.capitalize()} and "
                            "ignores the link's other values.")
            return Link(tab=DEFAULT_TAB, problems=tuple(problems), given=True)
    spec = TABS_BY_NAME[tab]
    inputs: dict[str, str] = {}
    for item in spec.inputs:
        value = _text(query.get(item.param))
        if value is None or not value.strip():
            continue
        if item.choices is not None:
            choice = value.strip().lower()
            if choice in item.choices:
                inputs[item.param] = choice
            else:
                problems.append(f"the {item.param} is not one of {', '.join(item.choices)}; "
                                f"using {item.choices[0]}.")
        elif len(value) > item.max_chars:
            problems.append(f"the {item.param} is {len(value)} characters long; the limit is {item.max_chars}, "
                            "so it was left out.")
        else:
            inputs[item.param] = value
    controls = spec.control_ids()
    view = _text(query.get(VIEW))
    if view is not None and VIEW in controls:
        if view in VIEWS_BY_KEY:
            chosen_view: str | None = view
        else:
            chosen_view = None
            problems.append(f"the view is not one of {', '.join(VIEWS_BY_KEY)}; the panel opens on its usual view.")
    else:
        chosen_view = None
    indexes: dict[str, int | None] = {}
    for param in (LAYER, HEAD):
        value = _text(query.get(param))
        indexes[param] = None
        if value is None or param not in controls:
            continue
        if INDEX_PATTERN.fullmatch(value.strip()) and int(value) <= MAX_INDEX:
            indexes[param] = int(value)
        else:
            problems.append(f"the {param} must be a whole number from 0 to {MAX_INDEX}; using the default.")
    return Link(tab=tab, inputs=inputs, view=chosen_view, layer=indexes[LAYER], head=indexes[HEAD],
                problems=tuple(problems), given=given)


def _text(value: Any) -> str | None:
    """A query value as text (a list, from a multi-valued mapping, gives its last item); None when absent."""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    return None if value is None else str(value)


def build_query(tab: str, values: Mapping[str, Any]) -> str:
    """The query of a link to `tab` with `values` (param -> value): only the format's parameters for that tab, in
    its order, empty ones left out. The browser's "Copy link" builds the same string (COPY_JS)."""
    spec = TABS_BY_NAME[tab]
    pairs = [(TAB, tab)]
    for param in spec.params()[1:]:
        value = values.get(param)
        if value is None or str(value) == "":
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        pairs.append((param, str(value)))
    return urlencode(pairs)


def notice_markdown(problems: tuple[str, ...] | list[str]) -> str:
    """What the page says about a link's bad values (escaped, though every sentence is the app's own)."""
    if not problems:
        return ""
    return PROBLEMS_INTRO + "\n" + "\n".join(f"- {html.escape(problem)}" for problem in problems)


# --- the page: opening a link and copying one -------------------------------------------------------------
def _components(demo: gr.Blocks) -> dict[str, Any]:
    """Every component of `demo` built so far, by elem_id."""
    return {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}


def _tab_components(demo: gr.Blocks, spec: LinkTab) -> dict[str, Any] | None:
    """{param: component} for one tab (its inputs, then view/layer/head); None when the page lacks the tab."""
    found = _components(demo)
    ids = {item.param: item.elem_id for item in spec.inputs} | spec.control_ids()
    if spec.run not in found or any(elem_id not in found for elem_id in ids.values()):
        return None
    return {param: found[elem_id] for param, elem_id in ids.items()}


def build_notice() -> gr.Markdown:
    """Where the page says what in a link could not be used; built where it should show (above the tabs)."""
    return gr.Markdown("", elem_id=NOTICE_ID)


# After the link's values are on the page: press the tab's own Run button (same queue and limits as a click).
# Pressed on the next tick: a click made while Gradio still finishes the load event is dropped.
CLICK_RUN_JS = """(target) => {
  const press = (tries) => {
    const button = document.getElementById(target);
    if (button && !button.disabled) { button.click(); } else if (tries > 0) { setTimeout(() => press(tries - 1), 100); }
  };
  if (target) { setTimeout(() => press(50), 0); }
  return [];
}"""


def install_link_loader(demo: gr.Blocks, tabs: gr.Tabs, notice: gr.Markdown) -> None:
    """On page load: read the link, select its tab, fill its inputs and controls, and run it when it can."""
    linked = {spec.name: components for spec in TABS if (components := _tab_components(demo, spec)) is not None}
    run_target = gr.Textbox("", visible=False, elem_id=RUN_TARGET_ID)
    every = [component for components in linked.values() for component in components.values()]
    outputs = [tabs, notice, run_target, *dict.fromkeys(every)]

    def open_link(request: gr.Request) -> dict[Any, Any]:
        link = parse_link(getattr(request, "query_params", None), set(linked))
        if not link.given:
            return {notice: gr.update()}  # nothing to open (an empty dict would count as one missing output each)
        return link_updates(link, linked[link.tab], tabs, notice, run_target)

    demo.load(open_link, outputs=outputs, **VIEW_EVENT).then(None, inputs=[run_target], js=CLICK_RUN_JS)


def link_updates(link: Link, components: dict[str, Any], tabs: gr.Tabs, notice: gr.Markdown,
                 run_target: gr.Textbox) -> dict[Any, Any]:
    """The page updates that open `link`: {component: update}."""
    spec = TABS_BY_NAME[link.tab]
    updates: dict[Any, Any] = {
        tabs: gr.Tabs(selected=spec.task),
        notice: notice_markdown(link.problems),
        run_target: spec.run if link.runs else "",
    }
    for param, value in link.inputs.items():
        updates[components[param]] = gr.update(value=value)
    if link.view is not None and VIEW in components:
        # every view, so the menu accepts the link's; the run then offers those that apply to its result
        updates[components[VIEW]] = gr.update(choices=[(view.label, view.key) for view in VIEWS], value=link.view)
    for param, value in ((LAYER, link.layer), (HEAD, link.head)):
        if value is None or param not in components:
            continue
        slider = components[param]
        if spec.panel is not None:  # the panel's slider spans the result after the run (and clamps the value)
            updates[slider] = gr.update(value=value, maximum=max(value, 1))
        else:                       # Explain's sliders already span its model
            updates[slider] = gr.update(value=min(value, int(getattr(slider, "maximum", value) or value)))
    return updates


def copy_js(tab: str) -> str:
    """The browser side of "Copy link": the same query as build_query, from the tab's current values."""
    spec = TABS_BY_NAME[tab]
    params = json.dumps(spec.params()[1:])
    return f"""(...values) => {{
  const names = {params};
  const query = new URLSearchParams();
  query.set("tab", {json.dumps(tab)});
  names.forEach((name, index) => {{
    const value = values[index];
    if (value !== null && value !== undefined && String(value) !== "") {{ query.set(name, String(value)); }}
  }});
  const link = window.location.origin + window.location.pathname + "?" + query.toString();
  try {{
    if (navigator.clipboard && window.isSecureContext) {{ navigator.clipboard.writeText(link).catch(() => {{}}); }}
  }} catch (error) {{}}
  return link;
}}"""


def build_copy_link(demo: gr.Blocks, task: str) -> gr.Textbox | None:
    """A "Copy link" button and a read-only box showing the link, for the tab built just before (by its gr.Tab
    id): the link goes to the clipboard where the browser allows it and always into the box. Built in the
    browser only (no server call): the tab's inputs and its view, layer and head as they are now."""
    spec = TABS_BY_TASK.get(task)
    components = _tab_components(demo, spec) if spec is not None else None
    if spec is None or components is None:
        return None
    prefix = spec.panel or spec.task
    with gr.Row(elem_id=f"{prefix}-link-row"):
        copy = gr.Button(COPY_LABEL, size="sm", scale=0, min_width=120, elem_id=f"{prefix}-copy-link")
        shown = gr.Textbox(label=LINK_LABEL, interactive=False, max_lines=1, scale=4, elem_id=f"{prefix}-link")
    copy.click(None, inputs=list(components.values()), outputs=[shown], js=copy_js(spec.name))
    return shown
