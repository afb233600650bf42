"""Time the viewer in headless Chromium: first image and all slices of a synthetic CT, and the bundle size.

Run from the repository root after ``make frontend``::

    .venv/bin/python -m bench.viewer_bench                       # 300 slices, 7 cold + 7 warm runs, SQLite
    .venv/bin/python -m bench.viewer_bench --runs 10 --slices 60
    .venv/bin/python -m bench.viewer_bench --database-url postgres://postgres@127.0.0.1:5432/postgres
    .venv/bin/python -m bench.viewer_bench --database-url postgres://postgres@127.0.0.1:5432/postgres \
        --redis-url redis://127.0.0.1:6379/14 --workers 2      # the production shape (docker-compose.yml)
    .venv/bin/python -m bench.viewer_bench --trace /tmp/viewer-trace.json   # Chrome trace of one cold run

It writes a study of 512 × 512 slices with ``bench.make_ct_study``, starts a
fresh ClinicNet exactly as the browser tests do (migrate, collectstatic,
``load_demo`` for the accounts, ``import_dicom`` for the study — the one ingest
path — then `manage.py serve`) on a temporary SQLite database (the embedded
mode: one process), or on a new PostgreSQL database created on the server of
``--database-url`` and dropped afterwards (with ``DATABASE_POOL=true``, as in
production; ``--redis-url`` and ``--workers`` for several processes), signs in
as ``doctor`` and opens ``/studies/<uid>/viewer/`` in Debian's Chromium
through Playwright. ``--quiet-load`` first waits for a quiet machine.

The figures are the viewer's own Performance API marks
(``frontend/src/timing.ts``), whose ``startTime`` counts from the start of the
navigation: ``clinicnet:viewer-start`` (bundle loaded, parsed and running),
``clinicnet:first-image`` (the first slice drawn) and ``clinicnet:all-loaded``
(every slice of the series decoded and in Cornerstone's cache).

*Cold* runs use a new browser context each time (empty HTTP cache, as on a
reader's first visit of the day); *warm* runs open the viewer again in the
same context (the bundle comes from the cache; DICOMweb answers are
``private, no-cache`` and revalidate with their ETags). The first cold run
also pays for the server's first touch of the files and is reported apart.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydicom.uid import generate_uid

from bench.machine import load_average, wait_for_quiet
from bench.make_ct_study import make_ct_study

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "frontend" / "dist"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The browser tests' flags (e2e/conftest.py): no GPU, so WebGL is software.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
CLINIC_CODE = "31200101"  # 밝은내과의원, where `doctor` works (imaging/demo.py)
USER = "doctor"
PASSWORD = "clinicnet-demo"
MARKS = ("clinicnet:viewer-start", "clinicnet:first-image", "clinicnet:all-loaded")
GOALS = {"clinicnet:first-image": 1500.0, "clinicnet:all-loaded": 10_000.0}


# --- the server --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _postgres(url: str) -> tuple[str, str]:
    """A new database on the server of *url*: (its URL, the admin URL to drop it with)."""
    import psycopg

    parts = urlsplit(url)
    name = f"clinicnet_viewer_bench_{secrets.token_hex(4)}"
    admin = urlunsplit((parts.scheme.replace("postgresql", "postgres"), parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, "")), admin


def _drop_postgres(admin: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')


@contextmanager
def clinicnet(
    study_folder: Path, database_url: str | None, log: Path, *, redis_url: str = "", workers: int = 1
) -> Iterator[str]:
    """A fresh ClinicNet with the demo accounts and the study in *study_folder*; yields its base URL."""
    data_dir = Path(tempfile.mkdtemp(prefix="clinicnet-viewer-bench-"))
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TASK_MODE", "DEBUG", "DATABASE_URL", "DATABASE_POOL", "REDIS_URL")
    }
    env.update(
        {
            "CLINICNET_DATA_DIR": str(data_dir),
            "SITE_URL": f"http://127.0.0.1:{port}",
            "DJANGO_SETTINGS_MODULE": "clinicnet.settings",
            "PYTHONUNBUFFERED": "1",
        }
    )
    admin = ""
    if database_url:
        env["DATABASE_URL"], admin = _postgres(database_url)
        env["DATABASE_POOL"] = "true"  # as in production: ASGI requests cannot keep a connection otherwise
    if redis_url:
        env["REDIS_URL"] = redis_url
    server: subprocess.Popen[bytes] | None = None
    try:
        print("server: migrate, collectstatic, load_demo, import_dicom …", file=sys.stderr)
        _manage(env, "migrate", "--noinput")
        _manage(env, "collectstatic", "--noinput")
        _manage(env, "load_demo")
        started = time.monotonic()
        _manage(env, "import_dicom", str(study_folder), "--institution", CLINIC_CODE, "--no-progress")
        print(f"server: study imported in {time.monotonic() - started:.1f} s", file=sys.stderr)
        with log.open("wb") as out:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--workers",
                    str(workers),
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log.read_text()}") from None
                time.sleep(0.2)
        yield url
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        if admin:
            _drop_postgres(admin, env["DATABASE_URL"])
        shutil.rmtree(data_dir, ignore_errors=True)


# --- the browser ---------------------------------------------------------------------------------


@dataclass
class Run:
    kind: str  # "cold" or "warm"
    marks: dict[str, float]
    requests: int
    resources: dict[str, tuple[float, float]] = field(default_factory=dict)  # name → (start, end) ms


# Key requests of a run, for the waterfall: (label, URL fragment), first match.
WATERFALL = (
    ("viewer page", "/viewer/"),
    ("viewer entry JS", "/static/viewer/assets/viewer-"),
    ("series search (QIDO)", "/series?includefield"),
    ("series metadata", "/metadata"),
    ("first frame", "/frames/1"),
)


def sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def open_viewer(page: Any, url: str, kind: str, timeout_ms: int) -> Run:
    page.goto(url, wait_until="commit")
    page.wait_for_function(
        "() => performance.getEntriesByName('clinicnet:all-loaded', 'mark').length > 0"
        " || document.getElementById('viewer')?.dataset.state === 'error'",
        timeout=timeout_ms,
        polling=50,
    )
    found: dict[str, Any] = page.evaluate(
        """() => ({
            marks: Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, m.startTime])),
            resources: performance.getEntriesByType('resource').map(r => [r.name, r.startTime, r.responseEnd]),
            largestScript: performance.getEntriesByType('resource')
                .filter(r => r.name.endsWith('.js'))
                .sort((a, b) => b.decodedBodySize - a.decodedBodySize)
                .map(r => [r.startTime, r.responseEnd])[0],
            navigation: performance.getEntriesByType('navigation').map(n => [n.name, n.startTime, n.responseEnd]),
            state: document.getElementById('viewer')?.dataset.state,
        })"""
    )
    if found["state"] == "error":
        raise RuntimeError(f"the viewer showed an error on {url}")
    entries = found["navigation"] + found["resources"]
    resources = {}
    for label, fragment in WATERFALL:
        for name, start, end in entries:
            if fragment in name:
                resources[label] = (start, end)
                break
    if found["largestScript"]:
        resources["largest JS chunk"] = tuple(found["largestScript"])
    marks = {name: found["marks"].get(name, float("nan")) for name in MARKS}
    # Other clinicnet:* marks (the viewer's intermediate steps) go into the waterfall.
    marks.update({name: value for name, value in found["marks"].items() if name.startswith("clinicnet:")})
    return Run(kind, marks, len(entries), resources)


def new_context(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    # The default buffer of 250 entries would drop most of a 300-slice series' requests.
    context.add_init_script("performance.setResourceTimingBufferSize(10000)")
    return context


def measure(base: str, study_uid: str, runs: int, trace: Path | None, timeout_ms: int) -> list[Run]:
    from playwright.sync_api import sync_playwright

    url = f"{base}/studies/{study_uid}/viewer/"
    results: list[Run] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # One throw-away run: the server's first touch of the files, Python imports, Chromium's own start.
        context = new_context(browser)
        page = context.new_page()
        sign_in(page, base)
        first = open_viewer(page, url, "first", timeout_ms)
        results.append(first)
        context.close()
        for number in range(runs):
            context = new_context(browser)
            page = context.new_page()
            sign_in(page, base)
            page.goto(f"{base}/studies/")  # as a reader arrives: from the worklist
            tracing = trace is not None and number == 0
            if tracing:
                browser.start_tracing(page=page, path=str(trace), screenshots=True)
            results.append(open_viewer(page, url, "cold", timeout_ms))
            if tracing:
                browser.stop_tracing()
            page.goto(f"{base}/studies/")
            results.append(open_viewer(page, url, "warm", timeout_ms))
            context.close()
            print(f"run {number + 1}/{runs}: " + ", ".join(_short(run) for run in results[-2:]), file=sys.stderr)
        browser.close()
    return results


def _short(run: Run) -> str:
    first, done = run.marks["clinicnet:first-image"], run.marks["clinicnet:all-loaded"]
    return f"{run.kind} first image {first:.0f} ms, all {done:.0f} ms"


# --- the bundle ------------------------------------------------------------------------------------


def bundle_sizes() -> list[tuple[str, int, int]]:
    """(what, raw bytes, gzip bytes) of the built viewer: what the first image needs, then the rest."""
    manifest = json.loads((DIST / "manifest.json").read_text())

    def walk(chunk: dict[str, Any], into: list[str]) -> list[str]:
        if chunk["file"] not in into:
            into.append(chunk["file"])
            for name in chunk.get("imports", []):
                walk(manifest[name], into)
        return into

    entry = next(chunk for chunk in manifest.values() if chunk.get("isEntry"))
    entry_js = walk(entry, [])
    # The viewer chunk the entry imports at once (src/viewer/app.ts), with the libraries it shares.
    viewer = manifest.get("src/viewer/app.ts")
    first_js = walk(viewer, list(entry_js)) if viewer else entry_js
    css = list(entry.get("css", []))
    assets = sorted(path.relative_to(DIST).as_posix() for path in (DIST / "assets").iterdir())
    later_js = [name for name in assets if name.endswith(".js") and name not in first_js and "Worker" not in name]
    later_css = [name for name in assets if name.endswith(".css") and name not in css]
    workers = [name for name in assets if "Worker" in name and name.endswith(".js")]
    wasm = [name for name in assets if name.endswith(".wasm")]

    def size(names: list[str]) -> tuple[int, int]:
        raw = zipped = 0
        for name in names:
            data = (DIST / name).read_bytes()
            raw += len(data)
            zipped += len(gzip.compress(data, compresslevel=9))
        return raw, zipped

    rows = []
    for label, names in (
        ("entry JS (starts the first image's requests)", entry_js),
        ("JS the first image needs (entry + viewer + libraries)", first_js),
        ("CSS", css),
        ("JS and CSS loaded later (co-reading, codec glue)", later_js + later_css),
        ("decode worker JS", workers),
        ("codecs (.wasm, fetched by the worker when a syntax needs one)", wasm),
    ):
        raw, zipped = size(names)
        rows.append((f"{label}: {len(names)} file(s)", raw, zipped))
    return rows


# --- report ----------------------------------------------------------------------------------------


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(results: list[Run], args: argparse.Namespace, database: str, load: tuple[str, str]) -> str:
    lines = []
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    lines.append(f"CPU: {cpu}, {os.cpu_count()} cores; {chromium}; Python {platform.python_version()}; {database}")
    lines.append(f"Command: python -m bench.viewer_bench {' '.join(sys.argv[1:])}".rstrip())
    lines.append(f"Server: manage.py serve --workers {args.workers}; {load[0]} before the runs, {load[1]} after")
    lines.append(
        f"Study: {args.slices} slices, 512×512 16-bit CT, uncompressed; {args.runs} cold and {args.runs} warm runs"
    )
    lines.append("")
    lines.append("| run | mark | median ms | p95 ms | min ms | goal |")
    lines.append("|---|---|---:|---:|---:|---|")
    first = results[0]
    for kind in ("cold", "warm"):
        runs = [run for run in results if run.kind == kind]
        for mark in MARKS:
            values = [run.marks[mark] for run in runs]
            median = statistics.median(values)
            goal = GOALS.get(mark)
            verdict = "" if goal is None else f"< {goal:.0f} ms: {'met' if median < goal else 'NOT met'}"
            name = mark.split(":")[1]
            lines.append(f"| {kind} | {name} | {median:.0f} | {_p95(values):.0f} | {min(values):.0f} | {verdict} |")
    lines.append(
        f"| first (server cold) | first-image / all-loaded | {first.marks['clinicnet:first-image']:.0f} / "
        f"{first.marks['clinicnet:all-loaded']:.0f} | | | |"
    )
    lines.append("")
    cold = sorted((run for run in results if run.kind == "cold"), key=lambda run: run.marks["clinicnet:first-image"])
    median_run = cold[len(cold) // 2]
    lines.append("Waterfall of the median cold run (ms from navigation start):")
    lines.append("")
    lines.append("| request / mark | start | end |")
    lines.append("|---|---:|---:|")
    events = [(start, label, f"{start:.0f}", f"{end:.0f}") for label, (start, end) in median_run.resources.items()]
    events += [(value, mark, "", f"{value:.0f}") for mark, value in median_run.marks.items()]
    for _key, label, start, end in sorted(events):
        lines.append(f"| {label} | {start} | {end} |")
    lines.append(f"\nRequests per cold run: {statistics.median(run.requests for run in cold):.0f}")
    lines.append("")
    lines.append("| bundle | raw KB | gzip KB |")
    lines.append("|---|---:|---:|")
    for label, raw, zipped in bundle_sizes():
        lines.append(f"| {label} | {raw / 1000:,.0f} | {zipped / 1000:,.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--runs", type=int, default=7, help="cold and warm runs each (default 7)")
    parser.add_argument("--database-url", help="a PostgreSQL server to create the benchmark's database on")
    parser.add_argument("--trace", type=Path, help="write a Chrome trace (chrome://tracing, Perfetto) of one cold run")
    parser.add_argument("--study-cache", type=Path, help="keep the generated study here and reuse it next time")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for one run")
    parser.add_argument("--redis-url", default="", help="Redis for the server (needed for --workers > 1)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default 1, the embedded mode)")
    parser.add_argument("--quiet-load", type=float, default=0, help="before the runs, wait for a 1-min load below this")
    parser.add_argument("--quiet-wait", type=float, default=900, help="wait at most this many seconds for it")
    args = parser.parse_args()
    if args.workers > 1 and not args.redis_url:
        parser.error("--workers > 1 needs --redis-url (manage.py serve refuses several workers without Redis)")
    if not (DIST / "manifest.json").exists():
        parser.error("frontend/dist/manifest.json is missing: run `make frontend` first")
    if not Path(CHROMIUM).exists():
        parser.error(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="viewer-bench-") as scratch:
        folder = args.study_cache or Path(scratch) / "study"
        marker = folder.parent / f"{folder.name}.study-uid"
        if marker.exists() and len(list(folder.glob("CT*.dcm"))) == args.slices:
            study_uid = marker.read_text().strip()
        else:
            shutil.rmtree(folder, ignore_errors=True)
            study_uid = generate_uid()
            print(f"writing {args.slices} slices …", file=sys.stderr)
            make_ct_study(folder, slices=args.slices, patient_id="BENCH-VIEWER", study_uid=study_uid)
            marker.write_text(study_uid)
        database = "PostgreSQL (DATABASE_POOL=true)" if args.database_url else "SQLite"
        log = Path(scratch) / "server.log"
        with clinicnet(folder, args.database_url, log, redis_url=args.redis_url, workers=args.workers) as base:
            wait_for_quiet(args.quiet_load, args.quiet_wait)
            before = "load average " + load_average()
            results = measure(base, study_uid, args.runs, args.trace, int(args.timeout * 1000))
            after = "load average " + load_average()
    print(report(results, args, database, (before, after)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
