"""End-to-end fixtures: a real ClinicNet server and Debian's Chromium.

The server is started as its own process, exactly as `make run` starts it
(`manage.py serve`: uvicorn, ASGI), on a fresh database: a SQLite file in a temporary folder, or,
when DATABASE_URL is set, a new PostgreSQL database on that server that is
dropped afterwards. With REDIS_URL set, a Celery worker is started too, so
the browser tests exercise the production shape in CI.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "e2e" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
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
DEMO_PASSWORD = "clinicnet-demo"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def _create_postgres_database(url: str) -> tuple[str, str]:
    import psycopg

    parts = urlsplit(url)
    name = f"clinicnet_e2e_{secrets.token_hex(4)}"
    admin_url = urlunsplit((parts.scheme.replace("postgresql", "postgres"), parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, "")), admin_url


def _drop_postgres_database(admin_url: str, database_url: str) -> None:
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Server:
    def __init__(self, url: str, env: dict[str, str], data_dir: Path) -> None:
        self.url = url
        self.env = env
        self.data_dir = data_dir

    def manage(self, *args: str) -> None:
        _manage(self.env, *args)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    data_dir = Path(tempfile.mkdtemp(prefix="clinicnet-e2e-"))
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("TASK_MODE", "DEBUG")}
    env.update(
        {
            "CLINICNET_DATA_DIR": str(data_dir),
            "SITE_URL": f"http://127.0.0.1:{port}",
            "DJANGO_SETTINGS_MODULE": "clinicnet.settings",
            "PYTHONUNBUFFERED": "1",
        }
    )
    admin_url = ""
    if env.get("DATABASE_URL"):
        env["DATABASE_URL"], admin_url = _create_postgres_database(env["DATABASE_URL"])
    processes: list[subprocess.Popen[bytes]] = []
    log = open(data_dir / "server.log", "wb")
    try:
        _manage(env, "migrate", "--noinput")
        _manage(env, "collectstatic", "--noinput")
        _manage(env, "load_demo")
        if env.get("REDIS_URL"):
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "clinicnet",
                        "worker",
                        "-l",
                        "warning",
                        "-Q",
                        "emergency,default",
                        "--concurrency",
                        "2",
                        "--hostname",
                        f"e2e-{port}@%h",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        processes.append(
            subprocess.Popen(
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
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
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
                    raise RuntimeError(f"server did not start: {(data_dir / 'server.log').read_text()}") from None
                time.sleep(0.2)
        yield Server(url, env, data_dir)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        if admin_url:
            _drop_postgres_database(admin_url, env["DATABASE_URL"])
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: object, server: Server, request: pytest.FixtureRequest) -> Iterator[object]:
    """A factory for pages in fresh browser contexts (one per simulated person)."""
    contexts = []

    def make(locale: str = "ko-KR") -> object:
        context = browser.new_context(base_url=server.url, locale=locale, viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for index, context in enumerate(contexts):
        for page_index, page in enumerate(context.pages):
            try:
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{index}-{page_index}.png"), full_page=True)
            except Exception:  # noqa: BLE001  (a screenshot is a bonus, never a failure)
                pass
        context.close()


def sign_in(page: object, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/accounts/login/")  # type: ignore[attr-defined]
    page.fill("input[name=username]", username)  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("button[type=submit].primary")  # type: ignore[attr-defined]
    page.wait_for_url(lambda url: "/accounts/login/" not in url)  # type: ignore[attr-defined]
