"""The dashboard in a real browser: Debian's headless Chromium, driven by selenium, with no network.

The page is opened from a ``file://`` URL while every connection the browser could make goes to a
closed port (``--proxy-server=127.0.0.1:9``) and no host name resolves, so a chart that needed a CDN
would not draw. After the scripts ran, every chart the page declares must hold a drawn SVG (or canvas)
with its traces in it, and the console must hold no SEVERE entry. A full-page screenshot is written to
``$RISK_TEST_ARTIFACTS`` (default ``test-artifacts/`` in the repository) for a person to look at.

The same check is run on copies of the page with a chart broken on purpose -- its drawing script removed,
or a script that throws -- and must fail on them: a check that cannot fail proves nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from report_lake import EVIL_BREAKER, FIRST, LAST, BuiltLake

from risk_pipeline.report import ReportSummary, build_report
from risk_pipeline.report.html import CHART_COUNT_META

REPO: Final = Path(__file__).resolve().parents[2]
ARTIFACTS_ENV: Final = "RISK_TEST_ARTIFACTS"
CHROMIUM: Final = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER: Final = shutil.which("chromedriver") or "/usr/bin/chromedriver"
RENDER_TIMEOUT: Final = 60.0
"""Generous: the machine is shared; the wait ends as soon as every chart is drawn."""
BROKEN_WAIT: Final = 8.0
"""How long a page with a chart broken on purpose is given: that chart never draws, so the wait runs out."""

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="Debian's headless browser is missing: apt-get install chromium chromium-driver",
)

_CHART_STATE: Final = """
return Array.from(document.querySelectorAll('figure.chart')).map(figure => {
    const svgs = Array.from(figure.querySelectorAll('svg'));
    return {
        id: figure.dataset.chart,
        svgs: svgs.length,
        drawn: svgs.filter(s => s.childElementCount > 0 && s.getBoundingClientRect().width > 0).length,
        traces: figure.querySelectorAll('svg .trace').length,
        canvases: figure.querySelectorAll('canvas').length,
    };
});
"""


@dataclass(frozen=True)
class Rendered:
    declared: int
    charts: list[dict[str, Any]]
    severe: list[str]

    def problems(self) -> list[str]:
        """Everything wrong with the page as the browser drew it; empty when every chart rendered."""
        found = []
        if len(self.charts) != self.declared:
            found.append(f"the page declares {self.declared} charts and holds {len(self.charts)}")
        for chart in self.charts:
            if not ((chart["drawn"] and chart["traces"]) or chart["canvases"]):
                found.append(f"chart {chart['id']} did not render: {chart}")
        found.extend(f"console: {message}" for message in self.severe)
        return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # with the driver's path below, selenium-manager downloads nothing
    arguments = [
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--proxy-server=127.0.0.1:9",  # the network is unreachable: nothing may come from a CDN
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1400,1000",
    ]
    if os.geteuid() == 0:
        arguments.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    for argument in arguments:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def render(driver: Any, page: Path, wait: float = RENDER_TIMEOUT) -> Rendered:
    """Load ``page`` from disk, wait until its charts are drawn (or the timeout), and read what is there."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what an earlier page left
    driver.get(page.resolve().as_uri())
    WebDriverWait(driver, RENDER_TIMEOUT).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def all_drawn(d: Any) -> bool:
        charts = d.execute_script(_CHART_STATE)
        return all(c["traces"] and c["drawn"] for c in charts)

    with contextlib.suppress(TimeoutException):  # an undrawn chart is reported below, by name
        WebDriverWait(driver, wait, poll_frequency=0.25).until(all_drawn)
    declared = int(driver.find_element("css selector", f'meta[name="{CHART_COUNT_META}"]').get_attribute("content"))
    severe = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return Rendered(declared, driver.execute_script(_CHART_STATE), severe)


def screenshot(driver: Any, name: str) -> Path:
    """A full-page PNG in the artifacts folder; its path is printed for whoever reads the test log."""
    folder = Path(os.environ.get(ARTIFACTS_ENV) or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # the responsive charts re-lay out at the new size, which can move the page's end
        page, viewport, window = driver.execute_script(
            "return [document.documentElement.scrollHeight, window.innerHeight, window.outerHeight]"
        )
        if viewport >= page:
            break
        driver.set_window_size(1400, min(page + window - viewport, 16_000))  # the window's frame is not page
    path = folder / name
    assert driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


@pytest.fixture(scope="module")
def report(built: BuiltLake, tmp_path_factory: pytest.TempPathFactory) -> ReportSummary:
    return build_report(
        built.lake, FIRST, LAST, tmp_path_factory.mktemp("browser") / "risk_history.html", instance=built.instance
    )


def test_every_chart_renders_offline_without_console_errors(browser: Any, report: ReportSummary) -> None:
    rendered = render(browser, report.path)
    assert rendered.declared == report.charts == 6
    assert rendered.problems() == []
    assert {c["id"] for c in rendered.charts} == {
        "breaker-timeline",
        "stop-outcomes",
        "stop-profit",
        "stop-profit-by-underlying",
        "rejections-per-day",
        "utilisation-per-day",
    }
    breakers = browser.execute_script(
        "return Array.from(document.querySelectorAll('#breaker-timeline .ytick text')).map(t => t.textContent)"
    )
    assert EVIL_BREAKER in breakers  # a name that looks like markup is shown as written, in the chart too
    title = browser.find_element("css selector", "h1").text
    assert title == f"Risk history: {FIRST} .. {LAST}"
    shot = screenshot(browser, "risk_history.png")
    assert shot.stat().st_size > 50_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _without_script(page: str, chart_id: str) -> str:
    """The chart's container kept, its drawing script gone."""
    pattern = re.compile(rf'(<div id="{chart_id}"[^>]*></div>)\s*<script[^>]*>.*?</script>', re.DOTALL)
    broken, count = pattern.subn(r"\1", page)
    assert count == 1, chart_id
    return broken


def _throwing(page: str, chart_id: str) -> str:
    """The chart's script calls a function that does not exist: it throws, and draws nothing."""
    start = page.index(f'<div id="{chart_id}"')
    call = page.index("Plotly.newPlot(", start)
    assert call - start < 2_000, chart_id
    return page[:call] + "Plotly.drawMissing(" + page[call + len("Plotly.newPlot(") :]


@pytest.mark.parametrize(("fault", "breaks"), [(_without_script, "stop-outcomes"), (_throwing, "rejections-per-day")])
def test_the_check_fails_on_a_broken_chart(
    browser: Any, report: ReportSummary, tmp_path: Path, fault: Any, breaks: str
) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(fault(report.path.read_text(encoding="utf-8"), breaks), encoding="utf-8")
    problems = render(browser, broken, wait=BROKEN_WAIT).problems()
    assert any(f"chart {breaks} did not render" in p for p in problems), problems
    if fault is _throwing:
        assert any(p.startswith("console:") and "drawMissing" in p for p in problems), problems
