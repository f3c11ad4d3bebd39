"""Make the README's pictures of an HTML report of the sample data, in the same headless Chromium the tests use.

    python docs/screenshot.py REPORT.html

``REPORT.html`` is what ``rareevent score sample_data/pump_sensors.csv --run
pump-ae --html REPORT.html`` wrote. Writes ``docs/report.png`` (header and
score timeline) and ``docs/report-episode.png`` (the first alarm episode).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent


def main() -> None:
    report = Path(sys.argv[1]).resolve()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs the system chromium: apt-get install -y chromium")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium, args=["--no-sandbox"]
        )
        page = browser.new_context(
            offline=True, viewport={"width": 1200, "height": 760}
        ).new_page()
        page.goto(report.as_uri())
        page.wait_for_function(
            "window.rareevent && window.rareevent.plots >= 1", timeout=60_000
        )
        page.screenshot(path=DOCS / "report.png")
        section = page.locator("section.episode").first
        section.scroll_into_view_if_needed()
        page.wait_for_function(
            "document.querySelector('section.episode[data-rendered]') !== null",
            timeout=60_000,
        )
        section.screenshot(path=DOCS / "report-episode.png")
        browser.close()


if __name__ == "__main__":
    main()
