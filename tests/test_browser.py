"""The HTML report in a real browser (headless Chromium): no console errors, CSP intact,
plots and findings visible, severity filter works."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver  # test extra: a missing one must fail, not skip

from bnconform.render import html

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DATA = Path(__file__).parent / "data"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() or not (CHROMEDRIVER.exists() or shutil.which("chromedriver")),
        reason="needs /usr/bin/chromium and chromedriver "
               "(apt-get install -y chromium chromium-driver)",
    ),
]


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingOptions", {"browser": "ALL"})
    chromedriver = CHROMEDRIVER if CHROMEDRIVER.exists() else shutil.which("chromedriver")
    service = webdriver.ChromeService(executable_path=str(chromedriver))
    browser = webdriver.Chrome(options=options, service=service)
    try:
        yield browser
    finally:
        browser.quit()


def test_failing_report_in_chromium(driver: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    result = json.loads((DATA / "sample_result_failing.json").read_text())
    page = tmp_path / "bnconform-report.html"
    page.write_text(html.render(result), encoding="utf-8")
    driver.get(page.as_uri())

    findings = driver.find_element(By.ID, "findings")
    assert findings.is_displayed()
    plot = driver.find_element(By.CSS_SELECTOR, "#plots svg")
    assert plot.is_displayed() and plot.size["width"] > 100 and plot.size["height"] > 50
    # The script ran (CSP hash matched): it reveals the filter bar and copy buttons.
    assert driver.find_element(By.ID, "filters").is_displayed()
    assert driver.find_element(By.CSS_SELECTOR, "button.copy").is_displayed()

    def click(group: str, value: str) -> None:
        selector = f'button[data-group="{group}"][data-filter="{value}"]'
        driver.find_element(By.CSS_SELECTOR, selector).click()

    def visible(severity: str) -> list[bool]:
        selector = f'article.finding[data-severity="{severity}"]'
        return [el.is_displayed() for el in driver.find_elements(By.CSS_SELECTOR, selector)]

    assert visible("error") == [True] * 3 and visible("warning") == [True]
    click("severity", "error")
    assert visible("error") == [True] * 3 and visible("warning") == [False]
    click("severity", "all")
    assert visible("warning") == [True]

    passed = driver.find_element(By.CSS_SELECTOR, 'details.check-group[data-status="passed"]')
    assert passed.get_attribute("open") is None  # passed checks start collapsed
    click("status", "passed")
    assert passed.get_attribute("open") is not None
    assert not driver.find_element(
        By.CSS_SELECTOR, 'details.check-group[data-status="failed"]').is_displayed()

    driver.find_element(By.CSS_SELECTOR, "button.copy").click()
    assert driver.save_screenshot(str(tmp_path / "report.png"))
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []


def test_tutorial_report_from_a_real_run_shows_the_momentum_plot(driver: Any, tmp_path: Path) -> None:
    """The bundled example, checked for real: the running-mean plot is there and drawn, with
    the implementation, spec and inverted-momentum lines, and the page logs no error."""
    from selenium.webdriver.common.by import By

    from bnconform.api import run_check

    result = run_check("bnconform.examples.tutorial:BatchNorm")
    page = tmp_path / "tutorial.html"
    page.write_text(html.render(result), encoding="utf-8")
    driver.get(page.as_uri())

    plot = driver.find_element(By.CSS_SELECTOR, "#plots svg")
    assert plot.is_displayed() and plot.size["width"] > 100
    assert {"implementation", "spec", "inverted-momentum hypothesis"} <= {
        t.text for t in plot.find_elements(By.TAG_NAME, "text")
    }
    shown = [el.text for el in driver.find_elements(By.CSS_SELECTOR, "article.finding") if el.is_displayed()]
    assert any("momentum-inverted" in text for text in shown)
    assert driver.save_screenshot(str(tmp_path / "tutorial.png"))
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
