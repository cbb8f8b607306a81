"""Presenter mode: the page as a projector needs it (a toggle on the page, or `?presenter=1` in the URL).

Large type (labels and inputs 20 px and more, figure titles, ticks and captions scaled), high contrast, and the
technical controls folded away (sampling settings, result JSON, timings, the prompt sent). All of it is CSS on a
class of the page's <body>, so it changes nothing on the server and needs no rerun: the figures the server sends
stay the same, and the same link opens the same view with or without it. The plots also follow Gradio's light and
dark themes (transparent paper, text in the theme's colour) instead of sitting on the page as white cards.
"""

from __future__ import annotations

import gradio as gr

from demos import VIEW_EVENT

PRESENTER_CLASS = "atlas-presenter"
PRESENTER_QUERY = "presenter"
TOGGLE_LABEL = "Presenter mode (large type for a projector)"

# The toggle sets the class; a page opened with ?presenter=1 (or 0) sets the toggle, which sets the class.
TOGGLE_JS = f"(on) => {{ document.body.classList.toggle('{PRESENTER_CLASS}', !!on); }}"
FROM_URL_JS = f"""() => {{
  const value = new URLSearchParams(window.location.search).get('{PRESENTER_QUERY}');
  return value === '1' || value === 'true' || value === 'on';
}}"""

_LARGE = f"body.{PRESENTER_CLASS}"
PRESENTER_CSS = f"""
{_LARGE} {{ --atlas-present-text: 20px; }}
{_LARGE} .gradio-container {{ max-width: 100% !important; }}
{_LARGE} label, {_LARGE} label span, {_LARGE} .label-wrap span, {_LARGE} button, {_LARGE} .tab-nav button,
{_LARGE} [role="tab"], {_LARGE} input, {_LARGE} textarea, {_LARGE} select, {_LARGE} .prose, {_LARGE} .prose p,
{_LARGE} .prose li, {_LARGE} [data-testid="block-info"], {_LARGE} .atlas-tok, {_LARGE} .atlas-seg
  {{ font-size: var(--atlas-present-text) !important; line-height: 1.45 !important; }}
{_LARGE} #intro h1 {{ font-size: 40px !important; }}
{_LARGE} .js-plotly-plot .gtitle {{ font-size: 22px !important; }}
{_LARGE} .js-plotly-plot .xtick text, {_LARGE} .js-plotly-plot .ytick text,
{_LARGE} .js-plotly-plot .annotation-text, {_LARGE} .js-plotly-plot .cbtitle text,
{_LARGE} .js-plotly-plot .colorbar text {{ font-size: 16px !important; }}
{_LARGE} .js-plotly-plot text {{ fill: #000 !important; }}
.dark {_LARGE} .js-plotly-plot text, body.dark.{PRESENTER_CLASS} .js-plotly-plot text {{ fill: #fff !important; }}
{_LARGE} .atlas-tok, {_LARGE} .atlas-seg {{ color: #000 !important; }}
/* technical controls folded away: sampling settings, result JSON, timings, the exact prompt, API-level choices */
{_LARGE} [id$="-json"], {_LARGE} [id$="-prompt-panel"], {_LARGE} [id$="-side"], {_LARGE} [id$="-statistic"],
{_LARGE} .atlas-technical {{ display: none !important; }}
/* every mode: plots follow the page's theme instead of sitting on it as white cards */
.dark .js-plotly-plot .main-svg {{ background: transparent !important; }}
.dark .js-plotly-plot .gtitle, .dark .js-plotly-plot .xtick text, .dark .js-plotly-plot .ytick text,
.dark .js-plotly-plot .annotation-text, .dark .js-plotly-plot .g-xtitle text, .dark .js-plotly-plot .g-ytitle text,
.dark .js-plotly-plot .colorbar text, .dark .js-plotly-plot .legendtext {{ fill: var(--body-text-color) !important; }}
"""


def build_presenter_toggle(demo: gr.Blocks) -> gr.Checkbox:
    """The toggle (built into the current Blocks context); `?presenter=1` turns it on when the page opens."""
    toggle = gr.Checkbox(False, label=TOGGLE_LABEL, elem_id="presenter-toggle", container=False)
    toggle.change(None, inputs=[toggle], js=TOGGLE_JS, **{**VIEW_EVENT, "show_progress": "hidden"})
    demo.load(None, outputs=[toggle], js=FROM_URL_JS, **{**VIEW_EVENT, "show_progress": "hidden"})
    return toggle
