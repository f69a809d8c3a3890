"""The status page in a real browser: Debian's headless Chromium, driven by Selenium.

Selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver, so Selenium Manager
never downloads a browser. Without them the test fails (a skip would pass unnoticed);
`.ci/run` installs them on a fresh CI machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pipeline_helpers import ORGANIZER
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from serve_helpers import API_KEY, VIEWER, Served

from worker.simulator import SimulatorServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 30


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: the status page is tested in headless "
            "Chromium; install it with `apt-get install chromium chromium-driver` "
            "(.ci/run does so on a CI machine)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=1280,1500",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def text_of(driver: WebDriver, css: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def test_an_operator_follows_a_batch_and_retries_its_failed_rows(
    served: Served,
    failing_batch: Callable[..., str],
    sim: SimulatorServer,
    browser: WebDriver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wait = WebDriverWait(browser, WAIT_S, poll_frequency=0.1)
    # The operator signs in once (HTTP Basic, the viewer key); the browser presents the
    # credential again with every request the page and its polling make.
    user, key = VIEWER
    browser.get(served.url.replace("://", f"://{user}:{key}@") + "/")
    assert "no batches yet" in browser.page_source

    # The page was open before the batch existed: its polling must bring it in.
    batch_id = failing_batch("browser-batch")
    row = f'tr[data-batch="{batch_id}"]'
    wait.until(lambda d: text_of(d, f'{row} [data-count="failed"]') == "3")
    assert text_of(browser, f'{row} [data-field="state"]') == "finished"
    assert text_of(browser, f'{row} [data-count="created"]') == "2"
    assert text_of(browser, f'{row} [data-field="progress"]') == "6 / 6"
    browser.save_screenshot(str(tmp_path / "status-list.png"))

    browser.find_element(By.CSS_SELECTOR, f"{row} a").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart circle.point")) >= 1)
    line = browser.find_element(By.CSS_SELECTOR, "#chart polyline").get_attribute("points")
    assert line and line.strip()
    failures = browser.find_element(By.ID, "failures").text
    assert "404 NotFound 2" in failures
    assert "403 Forbidden 1" in failures

    for meeting in ("m-gone-1", "m-gone-2"):  # Graph knows them now; the 403 stays
        sim.state.add_meeting(ORGANIZER, f"{batch_id}-{meeting}")
    browser.find_element(By.NAME, "api_key").send_keys(API_KEY)
    browser.find_element(By.ID, "retry").click()
    wait.until(lambda d: text_of(d, "#notice") == "3 failed rows enqueued again.")
    # The two rows Graph now knows are created, and the batch ends again (the 403 row may
    # still be on its way when the second of them lands): one poll's numbers, read whole.
    wait.until(
        lambda d: (
            text_of(d, '[data-count="created"]') == "4"
            and text_of(d, '[data-field="state"]') == "finished"
        )
    )
    assert text_of(browser, '[data-count="failed"]') == "1"
    assert API_KEY not in browser.page_source
    assert "403 Forbidden 1" in browser.find_element(By.ID, "failures").text

    screenshot = tmp_path / "status-page.png"
    browser.save_screenshot(str(screenshot))
    with capsys.disabled():
        print(f"\nstatus page screenshots: {screenshot} and {tmp_path / 'status-list.png'}")
