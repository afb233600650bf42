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


def overlay(page: Page, corner: str, cell: int = 0) -> str:
    script = f"document.querySelectorAll('.viewport-cell')[{cell}].querySelector('.overlay.{corner}').innerText"
    return page.evaluate(script)


def markers(page: Page) -> str:
    return page.evaluate(
        "['top','right','bottom','left']"
        ".map(m => document.querySelector('.viewport-cell .marker.' + m).innerText).join(' ')"
    )


def drag(page: Page, start: tuple[float, float], end: tuple[float, float], button: str = "left") -> None:
    box = page.locator(".viewport-cell").first.bounding_box()
    assert box
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down(button=button)
    for step in range(1, 11):
        x = start[0] + (end[0] - start[0]) * step / 10
        y = start[1] + (end[1] - start[1]) * step / 10
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
    page.mouse.up(button=button)


def interactions(page: Page, out: Path) -> None:
    """The reader's everyday moves on the first series, with a screenshot after each group."""
    first = series_uids(page)[0]
    page.dblclick(f'.series-item[data-series="{first}"]')
    wait_ready(page)
    time.sleep(1)
    page.keyboard.press("2")
    time.sleep(0.3)
    print("preset 2:", overlay(page, "br").replace("\n", " | "))
    page.keyboard.press("1")
    time.sleep(0.3)
    print("preset 1 (file):", overlay(page, "br").replace("\n", " | "))
    box = page.locator(".viewport-cell").first.bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(5):
        page.mouse.wheel(0, 120)
        time.sleep(0.1)
    time.sleep(0.5)
    print("after 5 wheel steps:", overlay(page, "bl").replace("\n", " | "))
    page.keyboard.press("End")
    time.sleep(0.5)
    print("End:", overlay(page, "bl").split("\n")[1])
    page.keyboard.press("Home")
    time.sleep(0.3)
    page.keyboard.press("w")
    drag(page, (0.5, 0.5), (0.6, 0.4))
    time.sleep(0.3)
    print("after W/L drag:", overlay(page, "br").replace("\n", " | "))
    page.keyboard.press("1")
    page.keyboard.press("l")
    drag(page, (0.35, 0.5), (0.65, 0.5))
    count = "document.querySelectorAll('.viewport-cell svg [data-annotation-uid]').length"
    drawn = page.evaluate(count)
    page.keyboard.press("z")  # picks the zoom tool; must not undo the length just drawn
    time.sleep(0.3)
    print("annotations before/after Z:", drawn, page.evaluate(count))
    page.keyboard.press("e")
    drag(page, (0.42, 0.3), (0.5, 0.4))
    page.keyboard.press("r")
    drag(page, (0.55, 0.45), (0.62, 0.55))
    page.keyboard.press("a")
    page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + 0.7 * box["height"])
    page.mouse.click(box["x"] + 0.4 * box["width"], box["y"] + 0.8 * box["height"])
    page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 0.7 * box["height"])
    time.sleep(0.5)
    page.keyboard.press("t")
    drag(page, (0.7, 0.25), (0.6, 0.35))
    time.sleep(0.5)
    page.fill(".viewer-dialog.prompt input", "결절 의심")
    page.keyboard.press("Enter")
    time.sleep(0.5)
    page.screenshot(path=str(out / "50-measurements.png"))
    before = page.evaluate(count)
    # Select the length line by its end (window/level active: measurements stay selectable), then delete it.
    page.keyboard.press("w")
    page.mouse.click(box["x"] + 0.65 * box["width"], box["y"] + 0.5 * box["height"])
    page.keyboard.press("Delete")
    time.sleep(0.3)
    print("annotations before/after Delete:", before, page.evaluate(count))
    text = page.evaluate(
        "[...document.querySelectorAll('.viewport-cell svg text')].map(t => t.textContent).join(' | ')"
    )
    print("measurement text:", text)
    print("markers:", markers(page))
    page.keyboard.press(".")
    time.sleep(0.3)
    print("rotated right:", markers(page))
    page.keyboard.press("h")
    time.sleep(0.3)
    print("then flipped H:", markers(page))
    page.keyboard.press("0")
    time.sleep(0.3)
    print("reset:", markers(page))
    page.keyboard.press("?")
    time.sleep(0.3)
    page.screenshot(path=str(out / "60-help.png"))
    page.keyboard.press("Escape")
    page.keyboard.press("d")
    time.sleep(1)
    page.screenshot(path=str(out / "61-tags.png"))
    print("tag rows:", page.evaluate("document.querySelectorAll('.tag-table tbody tr').length"))
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Digit3")
    time.sleep(2)
    page.screenshot(path=str(out / "70-2x2.png"))
    uids = series_uids(page)
    page.drag_and_drop(f'.series-item[data-series="{uids[3]}"]', ".viewport-cell[data-cell='1']")
    time.sleep(2)
    print("dropped into cell 2:", overlay(page, "bl", 1).split("\n")[0])
    page.screenshot(path=str(out / "71-dropped.png"))


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
            page.click("main button[type=submit]")
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
        interactions(page, args.out)
        if not args.base:
            page.goto(url + ("&" if "?" in url else "?") + "lang=en")
            print("english:", wait_ready(page))
            time.sleep(1)
            page.screenshot(path=str(args.out / "90-english.png"))
        browser.close()
    for problem in problems:
        print(problem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
