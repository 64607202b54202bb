"""The dashboard end to end in a real headless browser (Debian's chromium + chromedriver, via Selenium):
the `nasforge dashboard` command serves a real store, the page renders the trials and the plots,
shows hostile strings as text, and updates by itself when the store changes."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nasforge.store import Store

from .dashboard_store import EVIL, EVIL_LABEL, add_finished_trial, make_store, shown_status

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,2000"]

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")
pytest.importorskip("starlette", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')")
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); scripts/setup.sh installs them "
                f"with apt-get where it can", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

TIMEOUT = 90  # generous: the machine may be loaded; nothing here asserts speed


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("dash") / "search.db", trials=14)


@pytest.fixture(scope="module")
def server(store):
    """`nasforge dashboard STORE --port 0` in its own process; yields its URL."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "nasforge.cli", "dashboard", str(store), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    url, seen, deadline = None, [], time.monotonic() + TIMEOUT
    while url is None and time.monotonic() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        m = re.search(r"http://127\.0\.0\.1:\d+/", line)
        url = m.group(0) if m else None
    if url is None:
        proc.kill()
        pytest.fail("the dashboard did not start: " + "".join(seen))
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # noqa: BLE001 - a broken browser install is a reason to skip, with the reason
        pytest.skip(f"headless chromium did not start: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    driver.set_page_load_timeout(TIMEOUT)
    yield driver
    driver.quit()


def wait(driver, condition, what: str):
    try:
        return WebDriverWait(driver, TIMEOUT, poll_frequency=0.2).until(lambda d: condition(d))
    except Exception as exc:
        raise AssertionError(f"timed out waiting for {what}; the page says: {driver.find_element(By.TAG_NAME, 'body').text[:800]}") from exc


def rows(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#trials-table tbody tr")


def test_stored_html_and_script_are_shown_as_text(server, browser):
    browser.get(server)
    wait(browser, lambda d: len(rows(d)) >= 16, "the trials table")
    # no stored string became markup: the page has only its own two scripts and no <img>
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.execute_script("return document.querySelectorAll('script').length") == 2
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    # ... and they are there, verbatim, as text: the arch value, the label, the error
    chosen = browser.find_element(By.ID, "chosen-arch").text
    assert EVIL in chosen and EVIL_LABEL in chosen
    table = browser.find_element(By.ID, "trials-table").text
    assert EVIL in table and EVIL_LABEL in table
    failed = browser.find_element(By.CSS_SELECTOR, '#trials-table tr[data-status="FAILED"] td.err').text
    assert f"cursed arch {EVIL}" in failed
    edge_labels = [e.get_attribute("data-op") for e in browser.find_elements(By.CSS_SELECTOR, ".dag text.nf-edge-label")]
    assert EVIL in edge_labels


def test_page_renders_the_store_and_updates_live(server, browser, store, tmp_path):
    browser.get(server)
    wait(browser, lambda d: len(rows(d)) == 16, "16 rows in the trials table")
    statuses = [r.get_attribute("data-status") for r in rows(browser)]
    with Store(store, readonly=True) as s:
        stored = [t.status.value for t in s.trials(s.experiments()[0].id, with_reports=False)]
    assert sorted(statuses) == sorted(stored)
    assert statuses.count("RUNNING") == 1 and statuses.count("FAILED") >= 1
    n_ok = statuses.count("SUCCEEDED")
    assert browser.find_element(By.ID, "count-total").text == "16"
    assert browser.find_element(By.ID, "exp-status").text == shown_status(store)
    # the plots: one dot per successful trial (best-so-far and metric-vs-cost), a Pareto front, curves, a cell
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-best circle.point")) == n_ok
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-cost circle.point")) == n_ok
    assert browser.find_elements(By.CSS_SELECTOR, "#plot-cost .pareto circle.point")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-curves path.nf-line:not(.nf-dashed)")) == 5  # the top five
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-curves path.nf-dashed")) == 1  # and the running trial
    assert len(browser.find_elements(By.CSS_SELECTOR, ".dag path.nf-edge")) == 3
    assert "test_acc" in browser.find_element(By.ID, "tests-table").text
    link = browser.find_element(By.ID, "download-arch")
    assert link.get_attribute("href") == server + "api/experiments/demo/arch.json" and link.get_attribute("download")

    # filter by status, tick a trial to see its curve, sort by the metric
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("FAILED")
    assert {r.get_attribute("data-status") for r in rows(browser)} == {"FAILED"}
    rows(browser)[0].find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#plot-curves path.nf-line")) == 1, "the ticked trial's curve alone")
    rows(browser)[0].find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#plot-curves path.nf-line")) == 6, "the default curves again")
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("")
    browser.find_element(By.CSS_SELECTOR, 'th[data-key="metric"]').click()
    best_id = int(browser.find_element(By.CSS_SELECTOR, "#card-best\\ val_acc .s").text.split()[1])
    assert int(rows(browser)[0].get_attribute("data-id")) == best_id

    # a new, better trial lands in the store: the page shows it without a reload
    browser.execute_script("window.__same_page = true")
    with Store(store) as s:
        add_finished_trial(s, s.experiments()[0].id, 16, value=0.97)
    wait(browser, lambda d: len(rows(d)) == 17, "the new trial's row")
    wait(browser, lambda d: d.find_element(By.ID, "count-total").text == "17", "the new count")
    assert browser.execute_script("return window.__same_page === true")  # no reload happened
    assert len(browser.find_elements(By.CSS_SELECTOR, "#plot-best circle.point")) == n_ok + 1
    assert "0.9700" in browser.find_element(By.CSS_SELECTOR, "#card-best\\ val_acc").text
    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
