"""Drive the viewer in Debian's headless Chromium and take screenshots.

Development aid: works against the mock server (``mock_dicomweb.py``) or a
real ClinicNet (``--login reader`` signs in first). Prints the browser's
console errors and failed requests, and writes PNGs to --out.

    .venv/bin/python frontend/dev/smoke.py --url http://127.0.0.1:8765/viewer/
    .venv/bin/python frontend/dev/smoke.py --base http://127.0.0.1:8000 --login reader --study 1.2.3...
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


def wait_ready(page: Page, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = page.evaluate("document.getElementById('viewer')?.dataset.state ?? ''")
        cell = page.evaluate("document.querySelector('.viewport-cell')?.dataset.state ?? ''")
        if state in ("error", "empty") or (state == "ready" and cell in ("ready", "error")):
            return f"{state}/{cell}"
        time.sleep(0.2)
    return f"timeout ({state})"


def series_uids(page: Page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('.series-item')].map(e => e.dataset.series)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="viewer page URL (mock server)")
    parser.add_argument("--base", help="ClinicNet base URL, with --login and --study")
    parser.add_argument("--login")
    parser.add_argument("--password", default="clinicnet-demo")
    parser.add_argument("--study")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / ".shots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: m.type in ("error", "warning") and problems.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
        if args.base:
            page.goto(f"{args.base}/accounts/login/")
            page.fill("input[name=username]", args.login)
            page.fill("input[name=password]", args.password)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            url = f"{args.base}/studies/{args.study}/viewer/"
        else:
            url = args.url
        page.goto(url)
        print("first series:", wait_ready(page))
        time.sleep(1.5)
        page.screenshot(path=str(args.out / "00-first.png"))
        uids = series_uids(page)
        print(f"{len(uids)} series")
        for number, uid in enumerate(uids, 1):
            page.dblclick(f'.series-item[data-series="{uid}"]')
            time.sleep(0.3)
            print(
                f"series {number}:",
                wait_ready(page),
                page.evaluate("document.querySelector('.viewport-cell .overlay.bl').innerText.split('\\n')[0]"),
            )
            time.sleep(1.0)
            page.screenshot(path=str(args.out / f"{number:02d}-series.png"))
        browser.close()
    for problem in problems:
        print(problem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
