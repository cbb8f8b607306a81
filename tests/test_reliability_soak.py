"""Soak: 1,000 mixed requests (every tab, layer/head/view switches, long and short inputs) on one tiny-profile server.

Resident memory after warm-up grows by less than 50 MB, no request fails, and kept results stay bounded: the oldest
sessions' results are evicted, so switching views there says the result expired instead of holding memory forever.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability.browser_protocol import AppLayout, QueueSession  # noqa: E402
from reliability.endpoints import answer_problem  # noqa: E402
from reliability.outcomes import Outcome, summarise  # noqa: E402
from reliability.report import record_figures  # noqa: E402
from reliability.server import AppServer  # noqa: E402

TOTAL_REQUESTS = 1000
# Warm-up lasts until the result store is full (64 kept results: 64 sessions) and every model and view was used once;
# growth before that is the store filling up to its bound, growth after it would be a leak.
WARM_UP_REQUESTS = 400
MAX_GROWTH_BYTES = 50 * 1024 * 1024
KEPT_RESULTS_MB = 32
REQUESTS_PER_SESSION = 5      # a new browser session every few requests: >64 sessions, more than the store keeps
SHORT_TEXTS = ["Hi", "Good film.", "猫", "The cat sat on the mat.", "مرحبا"]
LONG_TEXT = ("Attention lets every token look at every earlier token and weigh what it sees. " * 30)[:1900]
TABS = {
    # tab prefix: (api_name, arguments builder)
    "gen": ("generate", lambda text, rng: [text, rng.randint(1, 12), rng.choice([0.0, 0.8]), 0, 1.0, rng.randint(0, 9)]),
    "qa": ("answer", lambda text, rng: [f"{text} Marie Curie was born in Warsaw.", "Where was Marie Curie born?"]),
    "tr": ("translate", lambda text, rng: [text, rng.choice(["auto", "en-zh", "zh-en"])]),
    "sent": ("classify", lambda text, rng: [text]),
}


@pytest.fixture(scope="module")
def server() -> AppServer:
    # Kept results are bounded by bytes (256 MB by default). The soak sets a small bound so that the store is full
    # by the end of warm-up: growth after that is a leak, not the store filling up to its documented bound.
    with AppServer("tiny", extra_args=["--kept-results-mb", str(KEPT_RESULTS_MB)]) as running:
        yield running


def _choices_from_refresh(layout: AppLayout, refresh_index: int, prefix: str, value: Any) -> list[str]:
    """The view keys the panel offers after a run (the refresh event's update of the view dropdown)."""
    try:
        update = layout.output_of(refresh_index, f"{prefix}-view", value)
        return [str(choice[1]) for choice in update["choices"]]
    except (TypeError, KeyError, IndexError, ValueError):
        return ["heads"]


def _view_after_refresh(layout: AppLayout, refresh_index: int, prefix: str, value: Any, sent: Any) -> Any:
    """The view the refresh opened (a browser sends that value with the next control change)."""
    try:
        update = layout.output_of(refresh_index, f"{prefix}-view", value)
        return update.get("value", sent) if isinstance(update, dict) else sent
    except (TypeError, KeyError, IndexError, ValueError):
        return sent


def _ranges_from_refresh(layout: AppLayout, refresh_index: int, prefix: str, value: Any) -> tuple[int, int, int]:
    """The layer and head sliders' maxima and the last query token after a run (from the refresh's updates)."""
    try:
        def sent_to(control: str) -> Any:
            return layout.output_of(refresh_index, f"{prefix}-{control}", value)

        return int(sent_to("layer")["maximum"]), int(sent_to("head")["maximum"]), len(sent_to("query")["choices"]) - 1
    except (TypeError, KeyError, IndexError, ValueError):
        return 0, 0, 0


class SoakDriver:
    """Plays a stream of browser sessions: run a task, draw the panel, then switch layers, heads and views."""

    def __init__(self, server: AppServer, seed: int = 0) -> None:
        self.server = server
        self.layout = AppLayout.fetch(server.port)
        self.rng = random.Random(seed)
        self.outcomes: list[Outcome] = []
        self.sessions: list[QueueSession] = []
        self.refresh_of = {prefix: self.layout.chained_after(api_name, updating=f"{prefix}-plot")
                           for prefix, (api_name, _) in TABS.items()}

    def session_round(self) -> list[Outcome]:
        """One browser session's worth of requests (REQUESTS_PER_SESSION of them)."""
        rng = self.rng
        session = QueueSession(self.server.port)
        self.sessions.append(session)
        prefix = rng.choice(list(TABS))
        api_name, build = TABS[prefix]
        text = rng.choice(SHORT_TEXTS + [LONG_TEXT])
        arguments = build(text, rng)
        outcomes = []
        run = session.run(self.layout.api[api_name], arguments, timeout=120)
        if run.kind == "ok" and (problem := answer_problem(f"/{api_name}", tuple(arguments), run.value)):
            run = Outcome("failure", run.seconds, problem)
        outcomes.append(run)
        # view, side, layer, head, statistic, query, lens span, zoom: the view the page starts on, as a browser sends it
        controls = [self.layout.initial[f"{prefix}-view"], None, 0, 0, None, 0, None, None]
        refresh = session.run(self.refresh_of[prefix], controls, timeout=60)
        outcomes.append(refresh)
        refresh_index = self.refresh_of[prefix]
        views = (_choices_from_refresh(self.layout, refresh_index, prefix, refresh.value) if refresh.kind == "ok"
                 else ["heads"])
        layers, heads, last_query = _ranges_from_refresh(self.layout, refresh_index, prefix, refresh.value)
        controls[0] = _view_after_refresh(self.layout, refresh_index, prefix, refresh.value, controls[0])
        for _ in range(REQUESTS_PER_SESSION - 2):
            control = rng.choice(["layer", "head", "view", "query"])
            if control == "view":
                controls[0] = rng.choice(views)
            elif control == "layer":
                controls[2] = rng.randint(0, layers)   # the slider's maximum after the refresh
            elif control == "head":
                controls[3] = rng.randint(0, heads)
            else:
                controls[5] = rng.randint(0, last_query)
            outcomes.append(session.run(self.layout.event_of(f"{prefix}-{control}"), list(controls), timeout=60))
        for outcome in outcomes:
            outcome.detail = f"{prefix}: {outcome.detail}"
        return outcomes


@pytest.mark.slow
def test_a_thousand_mixed_requests_serve_everything_in_bounded_memory(server: AppServer) -> None:
    driver = SoakDriver(server)
    started = time.monotonic()
    rss_after_warm_up = None
    rss_samples: list[int] = []
    while len(driver.outcomes) < TOTAL_REQUESTS:
        driver.outcomes.extend(driver.session_round())
        assert server.alive, f"the server died after {len(driver.outcomes)} requests:\n{server.log_tail()}"
        if rss_after_warm_up is None and len(driver.outcomes) >= WARM_UP_REQUESTS:
            gc.collect()
            rss_after_warm_up = server.resident_bytes()
        if rss_after_warm_up is not None:
            rss_samples.append(server.resident_bytes())
    elapsed = time.monotonic() - started
    rss_end = server.resident_bytes()
    growth = rss_end - rss_after_warm_up
    # The trend over the second half tells a leak from allocator noise: bytes per request.
    half = rss_samples[len(rss_samples) // 2:]
    slope = float(np.polyfit(np.arange(len(half)), half, 1)[0]) / REQUESTS_PER_SESSION if len(half) > 2 else 0.0

    summary = summarise(driver.outcomes)
    print(f"\nsoak: {len(driver.outcomes)} requests in {elapsed:.0f} s, {summary.line()}, "
          f"RSS {rss_after_warm_up / 2**20:.1f} -> {rss_end / 2**20:.1f} MiB (growth {growth / 2**20:+.1f} MiB)")
    record_figures("soak", {
        "requests": len(driver.outcomes), "seconds": round(elapsed, 1), "served": summary.served,
        "clear_errors": summary.clear_errors, "failures": summary.failures, "sessions": len(driver.sessions),
        "rss_after_warm_up_mib": round(rss_after_warm_up / 2**20, 1), "rss_end_mib": round(rss_end / 2**20, 1),
        "growth_mib": round(growth / 2**20, 1), "late_trend_bytes_per_request": round(slope),
        "p50_s": round(summary.p50, 3), "p95_s": round(summary.p95, 3),
    })
    assert summary.failures == 0, "requests failed during the soak:\n" + "\n".join(summary.failure_details)
    assert summary.clear_errors == 0, [o.detail for o in driver.outcomes if o.kind == "clear_error"][:5]
    assert growth < MAX_GROWTH_BYTES, f"resident memory grew by {growth / 2**20:.1f} MiB after warm-up"

    # Kept results are bounded: the first session's result was evicted by the 100+ sessions after it.
    first = driver.sessions[0]
    start_view = driver.layout.initial["gen-view"]  # Gradio forgot the session's updates too: the page's first view
    expired = first.run(driver.layout.event_of("gen-layer"), [start_view, None, 1, 0, None, 0, None, None],
                        timeout=30)
    assert expired.kind == "ok", expired
    assert any("expired" in str(value) for value in expired.value), expired.value


def test_kept_results_are_bounded_in_count_and_bytes_and_expire() -> None:
    from demos.store import ResultStore
    from service.result import AttentionResult

    now = [0.0]
    store = ResultStore(max_entries=5, max_bytes=3 * 4 * 16 * 16 * 4, ttl_seconds=60, clock=lambda: now[0])
    attention = np.full((1, 4, 16, 16), 1 / 16, dtype=np.float32)  # (layer, head, query_pos, key_pos)
    result = AttentionResult(task="sentiment", model_name="tiny", architecture="encoder",
                             prediction={"label": "positive", "score": 1.0},
                             encoder_tokens=[str(i) for i in range(16)], encoder_attention=attention)
    for session in range(20):
        store.put(f"session-{session}", "sentiment", result)
        assert len(store) <= 3, "the byte bound (3 results) was not held"
        assert store.total_bytes <= store.max_bytes
    assert store.get("session-0", "sentiment") is None, "the oldest session outlived the bounds"
    assert store.get("session-19", "sentiment") is result
    now[0] += 61
    assert store.get("session-19", "sentiment") is None, "a result outlived its time to live"
    assert len(store) == 0 and store.total_bytes == 0
