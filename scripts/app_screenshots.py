"""Screenshots of the colorize tab for docs/: a historical example colorized, and the compare view.

Starts the app with the shipped weights on a throwaway database, drives it in Debian's headless Chromium.
Usage: python scripts/app_screenshots.py --out docs/
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.storage import _free_port  # noqa: E402
from demo.examples import historical_examples  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--photo", default="helenkeller.jpg", help="one of demo/examples")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    photo = next(p for p in historical_examples() if p.name == args.photo)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as folder:
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "demo", "--port", str(port), "--db",
                                   f"sqlite:///{Path(folder) / 'shots.sqlite'}"], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1360, "height": 1000})
                for _ in range(120):
                    try:
                        page.goto(f"http://127.0.0.1:{port}/")
                        break
                    except Exception:
                        time.sleep(1)
                page.wait_for_selector("#colorize-button", timeout=120_000)
                page.set_input_files("#source-image input[type=file]", str(photo))
                page.click("#colorize-button")
                page.wait_for_function("document.querySelector('#result-info') && "
                                       "document.querySelector('#result-info').innerText.includes('colorized in')",
                                       timeout=120_000)
                time.sleep(1.0)
                page.screenshot(path=str(out / "colorize_tab.jpg"), full_page=False, quality=82)
                page.get_by_text("Compare models on this photo").click()
                page.click("#compare-button")
                page.wait_for_function("document.querySelector('#compare-times') && "
                                       "document.querySelector('#compare-times').innerText.includes(' s')",
                                       timeout=300_000)
                time.sleep(1.0)
                page.locator("#compare-gallery").scroll_into_view_if_needed()
                page.screenshot(path=str(out / "compare_view.jpg"), full_page=False, quality=82)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"wrote {out / 'colorize_tab.jpg'} and {out / 'compare_view.jpg'}")


if __name__ == "__main__":
    main()
