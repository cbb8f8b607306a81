"""Shareable links: the query format, how hostile or broken values are refused, and the page's link components."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import parse_qsl

import gradio as gr
import pytest

import app
from demos import links
from demos.attention_panel import VIEWS_BY_KEY
from demos.links import DEFAULT_TAB, MAX_INDEX, TABS, build_query, notice_markdown, parse_link
from demos.store import ResultStore
from service import ModelService, limits


@pytest.fixture(scope="module")
def tiny_demo() -> gr.Blocks:
    return app.configure_queue(app.build_app(ModelService(profile="tiny"), ResultStore()))


def test_a_full_link_is_read_back_exactly() -> None:
    link = parse_link({"tab": "translate", "text": "Today is a beautiful day.", "direction": "en-zh",
                       "view": "heads", "layer": "3", "head": "1"})
    assert (link.tab, link.view, link.layer, link.head) == ("translate", "heads", 3, 1)
    assert link.inputs == {"text": "Today is a beautiful day.", "direction": "en-zh"}
    assert link.problems == () and link.runs and link.given


def test_a_page_without_a_link_changes_nothing() -> None:
    for query in (None, {}, {"forgotten": "1"}, {"__theme": "dark", "lang": "zh"}):
        link = parse_link(query)
        assert not link.given and link.problems == () and link.tab == DEFAULT_TAB


def test_an_unknown_tab_opens_the_default_tab_with_a_message_and_nothing_else() -> None:
    link = parse_link({"tab": "<script>alert(1)</script>", "prompt": "hello", "layer": "2"})
    assert link.tab == DEFAULT_TAB and link.inputs == {} and link.layer is None and not link.runs
    assert len(link.problems) == 1 and "generate, ask, translate, sentiment, explain" in link.problems[0]
    assert "script" not in " ".join(link.problems)


def test_a_tab_the_page_lacks_is_an_unknown_tab() -> None:
    link = parse_link({"tab": "explain", "text": "x"}, tabs={"generate", "ask", "translate", "sentiment"})
    assert link.tab == DEFAULT_TAB and "explain" not in link.problems[0]


def test_tab_names_ignore_case_and_spaces() -> None:
    assert parse_link({"tab": " Sentiment "}).tab == "sentiment"


def test_texts_are_kept_verbatim_even_markup_and_go_only_into_textboxes() -> None:
    hostile = '<img src=x onerror=alert(1)> "quoted" & 中文'
    link = parse_link({"tab": "sentiment", "text": hostile})
    assert link.inputs == {"text": hostile} and link.problems == ()


def test_an_overlong_text_is_left_out_with_a_message_naming_the_limit_not_the_text() -> None:
    long_text = "<b>" * 2000
    link = parse_link({"tab": "ask", "context": "a" * limits.MAX_CONTEXT_CHARS, "question": long_text})
    assert link.inputs == {"context": "a" * limits.MAX_CONTEXT_CHARS}
    assert not link.runs  # the question is missing now: the tab is filled, not run
    assert len(link.problems) == 1 and str(limits.MAX_INPUT_CHARS) in link.problems[0]
    assert "<b>" not in link.problems[0]


def test_each_text_has_its_own_limit() -> None:
    context = "a" * (limits.MAX_INPUT_CHARS + 1)  # over the question's limit, under the context's
    assert parse_link({"tab": "ask", "context": context, "question": "q"}).inputs["context"] == context


def test_blank_texts_count_as_absent() -> None:
    link = parse_link({"tab": "generate", "prompt": "   "})
    assert link.inputs == {} and link.problems == () and not link.runs


def test_a_bad_direction_falls_back_to_auto_with_a_message() -> None:
    link = parse_link({"tab": "translate", "text": "hi", "direction": "fr-de"})
    assert "direction" not in link.inputs and link.runs
    assert "auto, en-zh, zh-en" in link.problems[0]


def test_an_unknown_view_is_refused_and_every_panel_view_is_accepted() -> None:
    bad = parse_link({"tab": "generate", "view": "javascript:alert(1)"})
    assert bad.view is None and len(bad.problems) == 1 and "javascript" not in bad.problems[0]
    for key in VIEWS_BY_KEY:
        assert parse_link({"tab": "ask", "view": key}).view == key


@pytest.mark.parametrize("value", ["-1", "1.5", "3e2", "0x10", "", "NaN", "inf", "١٢", "9" * 5000,
                                   str(MAX_INDEX + 1), "<script>"])
def test_bad_layers_and_heads_are_refused_with_a_message(value: str) -> None:
    link = parse_link({"tab": "generate", "layer": value, "head": value})
    assert link.layer is None and link.head is None
    assert len(link.problems) == 2 and all(str(MAX_INDEX) in problem for problem in link.problems)


def test_layers_and_heads_up_to_the_bound_are_kept() -> None:
    link = parse_link({"tab": "generate", "layer": "0", "head": str(MAX_INDEX)})
    assert (link.layer, link.head) == (0, MAX_INDEX)


def test_parameters_of_another_tab_and_unknown_keys_are_ignored() -> None:
    link = parse_link({"tab": "generate", "prompt": "Once", "question": "why?", "direction": "en-zh",
                       "forgotten": "1", "evil": "<script>"})
    assert link.inputs == {"prompt": "Once"} and link.problems == ()


def test_explain_takes_text_layer_and_head_but_no_view() -> None:
    link = parse_link({"tab": "explain", "text": "The cat sat.", "view": "heads", "layer": "2", "head": "1"})
    assert link.inputs == {"text": "The cat sat."} and link.view is None and (link.layer, link.head) == (2, 1)


def test_a_multi_valued_query_uses_its_last_value() -> None:
    assert parse_link({"tab": ["ask", "sentiment"]}).tab == "sentiment"


def test_built_queries_round_trip_through_the_parser() -> None:
    values = {"text": "今天 & <b>明天</b>?", "direction": "zh-en", "view": "head", "layer": 3.0, "head": 1}
    query = build_query("translate", values)
    assert query.startswith("tab=translate&text=")
    link = parse_link(dict(parse_qsl(query)))
    assert link.inputs == {"text": "今天 & <b>明天</b>?", "direction": "zh-en"}
    assert (link.view, link.layer, link.head) == ("head", 3, 1)


def test_a_built_query_holds_only_the_tabs_parameters() -> None:
    query = build_query("sentiment", {"text": "ok", "prompt": "no", "lang": "zh", "view": "", "layer": None})
    assert dict(parse_qsl(query)) == {"tab": "sentiment", "text": "ok"}


def test_the_notice_is_empty_without_problems_and_escaped_with_them() -> None:
    assert notice_markdown(()) == ""
    shown = notice_markdown(["the <tab> & more"])
    assert "&lt;tab&gt; &amp;" in shown and "<tab>" not in shown


def test_copy_js_lists_the_same_parameters_as_build_query() -> None:
    for spec in TABS:
        script = links.copy_js(spec.name)
        for param in spec.params()[1:]:
            assert f'"{param}"' in script
        assert "URLSearchParams" in script and "writeText" in script


def test_every_tab_of_the_app_has_its_link_components(tiny_demo: gr.Blocks) -> None:
    for spec in TABS:
        assert links._tab_components(tiny_demo, spec) is not None, spec.name
        assert any(block.elem_id == f"{spec.panel or spec.task}-copy-link" for block in tiny_demo.blocks.values())
    tab_ids = {block.id for block in tiny_demo.blocks.values() if isinstance(block, gr.Tab)}
    assert {spec.task for spec in TABS} <= tab_ids


def test_the_link_events_are_private_and_run_no_model(tiny_demo: gr.Blocks) -> None:
    from demos import MODEL_CONCURRENCY_IDS

    loaders = [fn for fn in tiny_demo.fns.values() if fn.name == "open_link"]
    assert len(loaders) == 1
    assert loaders[0].api_visibility == "private" and loaders[0].concurrency_id not in MODEL_CONCURRENCY_IDS


def test_opening_a_link_selects_the_tab_fills_it_and_sets_the_panel(tiny_demo: gr.Blocks) -> None:
    spec = links.TABS_BY_NAME["translate"]
    components = links._tab_components(tiny_demo, spec)
    tabs, notice, target = object(), object(), object()
    link = parse_link({"tab": "translate", "text": "Hello", "view": "heads", "layer": "3", "head": "1"})
    updates = links.link_updates(link, components, tabs, notice, target)
    assert updates[tabs].selected == "translation"
    assert updates[notice] == "" and updates[target] == "tr-run"
    assert updates[components["text"]]["value"] == "Hello"
    assert updates[components["view"]]["value"] == "heads"
    assert updates[components["layer"]] == {"__type__": "update", "value": 3, "maximum": 3}
    assert updates[components["head"]]["value"] == 1


def test_a_link_whose_texts_are_missing_fills_but_does_not_run(tiny_demo: gr.Blocks) -> None:
    spec = links.TABS_BY_NAME["ask"]
    components = links._tab_components(tiny_demo, spec)
    tabs, notice, target = object(), object(), object()
    updates = links.link_updates(parse_link({"tab": "ask", "question": "Who?"}), components, tabs, notice, target)
    assert updates[target] == "" and updates[components["question"]]["value"] == "Who?"


def test_explain_layers_are_clamped_to_its_own_sliders(tiny_demo: gr.Blocks) -> None:
    spec = links.TABS_BY_NAME["explain"]
    components = links._tab_components(tiny_demo, spec)
    updates = links.link_updates(parse_link({"tab": "explain", "layer": str(MAX_INDEX)}), components,
                                 object(), object(), object())
    assert updates[components["layer"]]["value"] == components["layer"].maximum


def test_the_loader_reads_the_request_query(tiny_demo: gr.Blocks) -> None:
    fn = next(fn for fn in tiny_demo.fns.values() if fn.name == "open_link")
    unchanged = fn.fn(SimpleNamespace(query_params={}))   # no link: one update that changes nothing
    assert all(update == {"__type__": "update"} for update in unchanged.values()) and len(unchanged) == 1
    updates = fn.fn(SimpleNamespace(query_params={"tab": "nope"}))
    assert any(isinstance(value, str) and "could not be used" in value for value in updates.values())
