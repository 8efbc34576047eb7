"""The rehearsal page in a real browser (Debian's chromium, headless, driven by Selenium): the
seed's three stories clicked and typed as a deployer would (a picture and a form too); a
screenshot is kept in artifacts/."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.test_files import PNG
from tests.test_rehearsal import ROOT, rehearsal

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="browser test skipped: Debian's chromium and chromium-driver are not installed"
    " (.ci/run installs them)",
)


def wait(condition: Callable[[], Any], what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = condition()
        except Exception:  # an element re-rendered under us: look again
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@needs_chromium
async def test_the_three_stories_in_a_real_browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    async with rehearsal(tmp_path) as url:
        browser = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
        try:
            browser.get(url)
            assert "Rehearsal" in browser.find_element(By.CLASS_NAME, "banner").text

            def customer(n: int, says: str, picture: Path | None = None) -> None:
                Select(browser.find_element(By.ID, "customer")).select_by_value(str(n))
                box = browser.find_element(By.CSS_SELECTOR, "#say input")
                box.send_keys(says)
                if picture is not None:
                    chooser = browser.find_element(By.CSS_SELECTOR, "#say input[type=file]")
                    chooser.send_keys(str(picture))
                browser.find_element(By.CSS_SELECTOR, "#say button").click()

            def dm() -> str:
                return browser.find_element(By.ID, "dm").text

            # 1. a discount question with a picture, answered by the operator in the thread
            photo = tmp_path / "mug.png"
            photo.write_bytes(PNG)
            customer(0, "!ask May Ada get 15% off?", photo)
            wait(
                lambda: browser.find_element(By.CSS_SELECTOR, "#staff .file img[alt='mug.png']"),
                "the customer's picture in the thread",
            )
            thread = wait(
                lambda: browser.find_element(By.CSS_SELECTOR, "#staff form.w input"), "the thread"
            )
            thread.send_keys("Yes, 15% once.")
            browser.find_element(By.CSS_SELECTOR, "#staff form.w button").click()
            wait(lambda: "15% once" in dm(), "the answer in the DM")
            # 2. an order the customer confirms with the button
            order = {"item": "mug", "quantity": 1, "address": "1 Example Street, Springfield"}
            customer(1, f"!tool place_order {json.dumps(order)}")
            wait(
                lambda: browser.find_element(By.XPATH, "//div[@id='dm']//button[.='Confirm']"),
                "the Confirm button",
            ).click()
            wait(lambda: "Done: Place an order" in dm(), "the order placed")
            # 3. a refund an operator approves on the card
            refund = {"order_id": 4, "amount": 10, "reason": "arrived broken"}
            customer(2, f"!tool issue_refund {json.dumps(refund)}")
            Select(browser.find_element(By.ID, "operator")).select_by_value("1")
            wait(
                lambda: browser.find_element(By.XPATH, "//div[@id='staff']//button[.='Approve']"),
                "the Approve button",
            ).click()
            wait(lambda: "approved and done" in dm(), "the refund done")
            staff = browser.find_element(By.ID, "staff")
            wait(lambda: "approved by operator" in staff.text, "the card shows the decision")
            # 4. another refund denied, with the reason typed into the Deny form
            refund = {"order_id": 5, "amount": 10, "reason": "changed my mind"}
            customer(2, f"!tool issue_refund {json.dumps(refund)}")
            wait(
                lambda: browser.find_element(By.XPATH, "//div[@id='staff']//button[.='Deny']"),
                "the Deny button",
            ).click()
            reason = wait(
                lambda: browser.find_element(By.CSS_SELECTOR, "#told form.modal input"), "the form"
            )
            # the page refreshes twice a second: what is being typed must survive it
            await asyncio.sleep(1.2)
            reason.send_keys("outside the 30-day window")
            await asyncio.sleep(1.2)
            browser.find_element(By.CSS_SELECTOR, "#told form.modal button").click()
            wait(lambda: "not approved: outside the 30-day window" in dm(), "the denial")
            artifacts = ROOT / "artifacts"
            artifacts.mkdir(exist_ok=True)
            assert browser.save_screenshot(str(artifacts / "rehearsal.png"))
        finally:
            browser.quit()
    assert (ROOT / "artifacts" / "rehearsal.png").stat().st_size > 10_000


def test_the_screenshot_folder_is_not_committed():
    assert "artifacts/" in Path(ROOT / ".gitignore").read_text()
