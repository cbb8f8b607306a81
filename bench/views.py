"""Time what the server does on a layer/head switch, and how many bytes of figure JSON one update sends.

The app's switch handler is `demos.attention_panel.AttentionPanel.redraw`: it reads the kept result from the
ResultStore and draws one view; Gradio then serialises the figure (`gr.Plot.postprocess` → `fig.to_json()`).
Both steps are timed here, on a panel built exactly as the app builds it, with a result kept in its store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from bench.stats import Sample, time_call
from service.result import AttentionResult

SESSION = "bench-session"


@dataclass
class SwitchMeasurement:
    """Server time per switch (seconds) and bytes per update, for one kept result."""

    tokens: int
    seconds: Sample               # redraw + figure serialisation
    redraw_seconds: Sample        # the app's handler: read the kept result, build the figure
    serialise_seconds: Sample     # gr.Plot.postprocess: fig.to_json()
    figure_bytes: Sample          # the plot JSON Gradio sends (fig.to_json())
    update_bytes: Sample          # every output of the update, figure included


class SwitchBench:
    """An attention panel (built like the app's, in a throwaway Blocks) with its own result store."""

    def __init__(self, task: str) -> None:
        import gradio as gr

        from demos.attention_panel import AttentionPanel
        from demos.store import ResultStore

        self.task = task
        self.store = ResultStore()
        with gr.Blocks():
            self.panel = AttentionPanel(task, self.store, elem_prefix="bench")
        self.request = SimpleNamespace(session_hash=SESSION)

    def measure(self, result: AttentionResult, view: str, switches: int, vary: str = "layer") -> SwitchMeasurement:
        """Keep `result`, then switch `vary` ("layer" or "head") `switches` times, timing each redraw."""
        self.store.put(SESSION, self.task, result)
        side = result.main_side
        layers, heads = result.self_attention().shape[:2]  # (layer, head, query_pos, key_pos)
        query = len(result.tokens()) - 1
        self._switch(view, side, 0, 0, query)  # warm-up: imports, caches
        measurement = SwitchMeasurement(len(result.tokens()), Sample(), Sample(), Sample(), Sample(), Sample())
        for index in range(1, switches + 1):
            layer = index % layers if vary == "layer" else layers // 2
            head = index % heads if vary == "head" else 0
            redraw, serialise, figure, update = self._switch(view, side, layer, head, query)
            measurement.seconds.add(redraw + serialise)
            measurement.redraw_seconds.add(redraw)
            measurement.serialise_seconds.add(serialise)
            measurement.figure_bytes.add(figure)
            measurement.update_bytes.add(update)
        return measurement

    def _switch(self, view: str, side: str, layer: int, head: int, query: int) -> tuple[float, float, int, int]:
        """One redraw as the server runs it: (redraw seconds, serialise seconds, figure JSON bytes, update bytes)."""
        redraw, outputs = time_call(lambda: self.panel.redraw(view, side, layer, head, None, query, self.request))
        plot_update = outputs.get(self.panel.plot)                      # updates keyed by component
        figure = plot_update.get("value") if isinstance(plot_update, dict) else None
        if figure is None:
            raise RuntimeError(f"the {view!r} view drew no figure: {outputs.get(self.panel.info)!r}")
        serialise, plot_data = time_call(lambda: self.panel.plot.postprocess(figure))  # {"type", "plot": fig JSON}
        sent = [plot_data.model_dump() if item is plot_update else _jsonable(item) for item in outputs.values()]
        return redraw, serialise, len(plot_data.plot.encode()), len(json.dumps(sent, default=str).encode())


def _jsonable(item: Any) -> Any:
    """gr.update dicts and strings as JSON-ready data (component objects by name)."""
    if isinstance(item, dict):
        return {key: _jsonable(value) for key, value in item.items()}
    if isinstance(item, (list, tuple)):
        return [_jsonable(value) for value in item]
    if isinstance(item, (str, int, float, bool)) or item is None:
        return item
    return repr(item)
