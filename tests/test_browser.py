"""Protects what only a real browser shows: the Playground's loss chart gains points while a run is still
training, a gate heatmap is drawn, Stop ends a run, a finished run shows its results, and no page shows a
Streamlit exception. Runs `streamlit run app.py` and Debian's chromium (see conftest.py)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
# ~15-20 s of training for the app's one-thread worker on a 2-core machine (~25-40k rows/s), a point every 20
# steps: several refreshes see new points; the test stops it once the chart has grown twice.
LIVE = "?rows=5000&eval_rows=500&steps=2000&log_every=20"
SHORT = "?rows=1000&eval_rows=200&steps=80&batch_size=64&log_every=20"

PLOTS_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(p => ({
    y: (((p.layout || {}).yaxis || {}).title || {}).text || '',
    types: (p.data || []).map(t => t.type),
    n: Math.max(0, ...(p.data || []).filter(t => t.type === 'scatter' && !t.fill)
                                     .map(t => (t.x || []).filter(v => v !== null).length)),
}))"""


def loss_points(page) -> int:
    """Recorded points on the loss chart: the longest line in the plot whose y axis says 'loss'."""
    return max([p["n"] for p in page.evaluate(PLOTS_JS) if p["y"] == "loss"], default=0)


def running(page) -> bool:
    return page.locator(".st-key-stop button").is_enabled()


@pytest.fixture
def page(app_server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 2200})
    pg = context.new_page()
    yield pg
    context.close()


def open_playground(page, base: str, query: str) -> None:
    page.goto(base + "/" + query)
    page.locator(".st-key-start button").wait_for(timeout=60_000)
    wait_for(lambda: page.locator(".st-key-start button").is_enabled(), 30, "Start to be enabled")


def test_live_curves_grow_while_training_and_stop_ends_the_run(app_server, page):
    base, _ = app_server
    open_playground(page, base, LIVE)
    page.locator(".st-key-start button").click()
    wait_for(lambda: loss_points(page) >= 1, 90, "the first plotted point")
    seen = [loss_points(page)]
    deadline = time.monotonic() + 90
    while len(seen) < 3:  # the chart must grow on at least two refreshes while the run is still running
        assert time.monotonic() < deadline, f"the loss chart did not grow while running: {seen}"
        n = loss_points(page)
        if n > seen[-1]:
            assert running(page), f"the run ended before the chart grew twice: {seen + [n]}"
            seen.append(n)
        time.sleep(0.2)
    assert seen[0] < seen[1] < seen[2]
    plots = page.evaluate(PLOTS_JS)
    assert any("heatmap" in p["types"] for p in plots), "no gate heatmap drawn"

    page.locator(".st-key-stop button").click()
    page.get_by_text("Stopped at step").wait_for(timeout=20_000)
    wait_for(lambda: page.locator(".st-key-start button").is_enabled(), 20, "Start to be enabled after Stop")
    assert not running(page)
    assert page.locator(".stException").count() == 0


SWEEP_JS = """() => {
    const title = Array.from(document.querySelectorAll('[data-testid=stMarkdownContainer]'))
        .map(e => e.innerText).find(t => t.startsWith('The sweep')) || '';
    const plot = Array.from(document.querySelectorAll('.js-plotly-plot'))
        .find(p => ((p.layout || {}).xaxis || {}).title && p.layout.xaxis.title.text === 'task correlation p');
    const lines = plot ? plot.data.filter(t => !t.fill && t.xaxis === 'x') : [];
    return {title, models: lines.map(t => t.name), xs: lines.map(t => t.x)};
}"""


def test_the_sweep_chart_fills_in_live_against_p(app_server, page):
    base, _ = app_server
    open_playground(
        page, base, "?sweep=0,0.5,1&seeds=2&rows=2000&eval_rows=200&steps=1500&log_every=50&models=shared_bottom,mmoe"
    )
    page.locator(".st-key-start button").click()
    wait_for(
        lambda: "live, step" in (shown := page.evaluate(SWEEP_JS))["title"] and len(shown["models"]) == 2,
        120,
        "the sweep chart while training",
    )
    first = page.evaluate(SWEEP_JS)
    assert sorted(first["models"]) == ["MMoE", "Shared-Bottom"]
    assert all(x == [0, 0.5, 1] for x in first["xs"]), first["xs"]  # a point per p, in order
    step = lambda: int(re.search(r"step ([\d,]+) of", page.evaluate(SWEEP_JS)["title"]).group(1).replace(",", ""))  # noqa: E731
    seen = step()
    wait_for(lambda: "(final)" in page.evaluate(SWEEP_JS)["title"] or step() > seen, 120, "the sweep to move on")
    page.locator(".st-key-stop button").click()
    page.get_by_text("Stopped at step").wait_for(timeout=30_000)
    assert page.locator(".stException").count() == 0


def test_pause_holds_the_chart_step_adds_one_point_and_resume_goes_on(app_server, page):
    base, _ = app_server
    open_playground(page, base, "?rows=5000&eval_rows=500&steps=100000&log_every=20")
    page.locator(".st-key-start button").click()
    wait_for(lambda: loss_points(page) >= 2, 90, "the first plotted points")
    pace = page.locator(".st-key-pace button p")  # during a redraw Streamlit can briefly show two copies
    wait_for(lambda: pace.first.inner_text() == "Pause" and pace.first.is_enabled(), 20, "Pause to be enabled")
    pace.first.click()
    page.get_by_text("Paused at step").first.wait_for(timeout=30_000)
    wait_for(lambda: pace.first.inner_text() == "Resume", 20, "the Pause button to read Resume")
    time.sleep(2.5)  # a refresh or two: nothing moves while paused
    held = loss_points(page)
    time.sleep(2.5)
    assert loss_points(page) == held, "the chart grew while paused"
    step = page.locator(".st-key-step_once button").first
    wait_for(lambda: step.is_enabled(), 20, "Step to be enabled while paused")
    step.click()
    wait_for(lambda: loss_points(page) == held + 1, 60, "Step to add exactly one point")
    time.sleep(2.5)
    assert loss_points(page) == held + 1, "Step trained past its one point"
    pace.first.click()  # Resume
    wait_for(lambda: loss_points(page) >= held + 3, 60, "the chart to grow again after Resume")
    page.locator(".st-key-stop button").first.click()
    page.get_by_text("Stopped at step").wait_for(timeout=30_000)
    assert page.locator(".stException").count() == 0


# Records, from inside the page, whether the hidden warm-up chart was ever drawn and where: it lives for
# about one 2 s tick, so polling from the test could miss it on a slow machine.
WARMUP_WATCH = """new MutationObserver(() => {
  const plot = document.querySelector('.st-key-pg_chart_warmup .js-plotly-plot');
  if (plot && !window.__warmup) window.__warmup = plot.closest('.st-key-pg_chart_warmup').getBoundingClientRect().toJSON();
}).observe(document, {subtree: true, childList: true})"""


def test_an_idle_playground_loads_the_chart_library_out_of_sight_so_the_first_point_shows_at_once(app_server, page):
    base, _ = app_server
    page.add_init_script(WARMUP_WATCH)
    open_playground(page, base, SHORT)
    # 2 s after the page settles, plus a page run: seconds when idle, far longer on a loaded CI machine
    box = wait_for(lambda: page.evaluate("window.__warmup"), 120, "the hidden chart that loads the chart library")
    assert box["x"] + box["width"] < 0, box  # drawn outside the page, never seen
    # then the page stops its warm-up timer (one rerun) and the chart is gone
    wait_for(lambda: page.locator(".st-key-pg_chart_warmup").count() == 0, 120, "the warm-up to end")
    page.locator(".st-key-start button").click()
    t0 = time.monotonic()
    wait_for(lambda: loss_points(page) >= 1, 60, "the first plotted point")
    # measured 0.7-1.4 s here with the library loaded, 2.1-2.7 s without (bench/README.md holds the figure); the
    # bound only catches a page that never draws: 15 s was exceeded (15.2 s) with a 32-seed study on the same cores
    assert time.monotonic() - t0 < 45
    assert page.locator(".stException").count() == 0


def test_a_finished_run_shows_results_and_every_page_is_clean(app_server, page):
    base, _ = app_server
    open_playground(page, base, SHORT)
    page.locator(".st-key-start button").click()
    page.get_by_text("Results on the test set").wait_for(timeout=120_000)
    page.get_by_text("One seed cannot tell a real difference from luck").wait_for(timeout=10_000)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=10_000)  # the results table
    assert any("heatmap" in p["types"] for p in page.evaluate(PLOTS_JS))
    assert page.locator(".stException").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    time.sleep(0.5)  # let the last chart settle before the picture
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
    for path, title in (("runs", "Runs"), ("learn", "Learn")):
        page.goto(f"{base}/{path}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
        time.sleep(1.0)
        assert page.locator(".stException").count() == 0, f"/{path} shows an exception"


LEGEND_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .flatMap(p => (p.data || []).filter(t => t.showlegend !== false).map(t => t.name))"""


def test_compare_overlays_two_stored_runs_named_by_what_differs(app_server, page):
    from helpers import recorded_run

    base, home = app_server
    a, b = recorded_run(home, 0.3, correlation=0.2), recorded_run(home, 0.5, correlation=0.9)
    page.goto(f"{base}/compare?compare={a},{b}")
    page.get_by_text("Settings that differ:").wait_for(timeout=90_000)
    try:
        wait_for(lambda: "p = 0.9 · MMoE" in page.evaluate(LEGEND_JS), 120, "the compared curves")
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)
    assert {"p = 0.2 · MMoE", "p = 0.9 · MMoE"} <= set(page.evaluate(LEGEND_JS))
    assert page.get_by_text("Final test results").count() == 1
    assert f"compare={a}%2C{b}" in page.url or f"compare={a},{b}" in page.url
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 720})
    time.sleep(1.0)
    page.screenshot(path=str(ARTIFACTS / "compare_1280x720.png"))
    assert page.locator(".stException").count() == 0


def test_each_lesson_step_loads_its_settings_into_the_playground(app_server, page):
    from urllib.parse import parse_qsl, urlparse

    from mmoe_core.config import RunConfig
    from mmoe_core.lesson import STEPS

    base, _ = app_server
    for i, step in enumerate(STEPS):
        for label, config in step.configs:
            page.goto(f"{base}/lesson")
            page.get_by_role("heading", name="Lesson: when does MMoE help?").wait_for(timeout=90_000)
            page.locator("[data-testid='stButtonGroup'] button", has_text=f"{i + 1}. {step.title}").click()
            page.get_by_role("heading", name=f"{i + 1}. {step.title}").wait_for(timeout=30_000)
            page.get_by_role("button", name=label, exact=True).click()
            page.locator(".st-key-start button").wait_for(timeout=60_000)

            def shown() -> RunConfig:
                return RunConfig.from_query(dict(parse_qsl(urlparse(page.url).query)))[0]

            wait_for(lambda c=config: shown() == c, 30, f"step {i + 1}'s settings ({label}) in the Playground's link")
            assert page.locator(".stException").count() == 0, f"step {i + 1}: {label}"
