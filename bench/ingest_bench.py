"""Ingest benchmark: C-STORE, STOW-RS, previews and the memory of a 1 GB zip upload, against Orthanc.

Run from the repository root, with PostgreSQL and Redis running (as for the test suite)::

    .venv/bin/python -m bench.ingest_bench                   # everything, 3 rounds
    .venv/bin/python -m bench.ingest_bench --only cstore,stow --rounds 5
    .venv/bin/python -m bench.ingest_bench --profile         # py-spy: the SCP (storescu), a web process (STOW, 4)

What it does, all on this machine and on loopback:

* writes a synthetic 300-slice 512 × 512 16-bit CT study with ``bench.make_ct_study``
  (and four more for the concurrent clients), kept in ``--workdir`` for the next run;
* **disk**: copies the study's bytes to disk file by file with ``fsync`` (what any archive
  must at least do), and parses the headers with pydicom (``stop_before_pixels``) and with
  our ``parse_header``;
* **C-STORE**, one association: dcmtk's ``storescu`` (``TCP_NODELAY=1``) and a pynetdicom
  SCU (raw file bytes, ``TCP_NODELAY`` on its socket), against our ``manage.py dicom_scp``
  and against Orthanc (started with ``TCP_NODELAY=1`` so that its DCMTK SCP disables Nagle);
* **STOW-RS**, batches of 50 instances per request on one keep-alive connection per client:
  one client, then four concurrent client processes (one study each), against our
  ``POST /dicomweb/studies`` (two web processes — the production shape is several behind
  nginx; client *i* talks to process *i* mod 2) and Orthanc's ``POST /dicom-web/studies``;
* **previews**: two Celery worker processes (one worker, ``--concurrency 2``) on the real
  Redis broker render a study uploaded while they run; prints the wall time from the end of
  the upload to the study being ``ready``, and the rendering cost per slice;
* **memory**: a fresh web process takes a ≥ 1 GB zip (deflated copies of the study with
  new UIDs) through the web upload, ``POST /upload/files/``, signed in through the login
  form; prints the process's peak RSS (``VmHWM``).

Throughput runs have no Celery worker running (preview tasks wait in Redis and are dropped
afterwards), as Orthanc renders nothing at ingest either. Each measurement stores into a new
institution (ours) or a new, empty Orthanc storage folder, and the runs of ours and
Orthanc's are interleaved round by round, so that load from other people on a shared machine
spreads over both; the median of the rounds is printed. Our servers use their own
PostgreSQL database (``--database``, dropped and created; reached through the psycopg
connection pool, as in production), Redis database (``--redis-db``, flushed) and data
folder under ``--workdir`` (emptied). Nothing is deleted between timed runs: what a run
wrote is moved aside and removed when the bench ends (see :func:`retire`).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import http.client
import io
import json
import multiprocessing
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import load_average

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BATCH = 50
SLICES = 300
STUDIES = ["A", "C1", "C2", "C3", "C4"]  # A: the study; C1..C4: one per concurrent STOW client
ORTHANC_CONFIG = ROOT / "bench" / "orthanc" / "ingest" / "orthanc.json"
ORTHANC_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC_VERSION = ""


# --- processes and ports ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


@dataclass
class Server:
    """A server subprocess, stopped with SIGTERM (then SIGKILL) by :meth:`stop`."""

    name: str
    args: list[str]
    env: dict[str, str]
    port: int | None = None
    log: Path | None = None
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        handle = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(self.args, env=self.env, cwd=self.cwd, stdout=handle, stderr=handle)
        if self.port:
            wait_for_port(self.port)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def apt_install(package: str, what: str) -> None:
    print(f"installing Debian package {package} for {what} …", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", package],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def require(program: str, package: str) -> str:
    """The path of *program*; installs the Debian *package* with apt-get when it is missing."""
    found = shutil.which(program)
    if found:
        return found
    apt_install(package, program)
    found = shutil.which(program)
    if not found:
        raise SystemExit(f"{program} is still missing after installing {package}")
    return found


# --- our side: environment, database, fixtures ----------------------------------------------


def our_env(args: argparse.Namespace) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_", "TASK_", "CLINICNET_"))
    }
    env.update(
        CLINICNET_DATA_DIR=str(args.workdir / "data"),
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        # As in production (docker-compose.yml): without the pool every request opens a
        # connection, and PostgreSQL starts a backend and fills its caches for each.
        DATABASE_POOL="true",
        REDIS_URL=f"redis://127.0.0.1:6379/{args.redis_db}",
        TASK_MODE="celery",
        LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="clinicnet.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


def retire(path: Path, workdir: Path) -> None:
    """Move *path* aside, into ``workdir/retired``, which is removed when the bench ends.

    Removing files while a run is timed, or just before, costs that run: the
    file system frees their blocks (and TRIMs them, on a disk mounted with
    ``discard``), and for a minute it skips their inode numbers when it
    creates new files, checking each on the way.
    """
    if path.exists():
        aside = workdir / "retired" / uuid.uuid4().hex
        aside.parent.mkdir(parents=True, exist_ok=True)
        path.rename(aside)


def remove_retired(workdir: Path) -> None:
    shutil.rmtree(workdir / "retired", ignore_errors=True)


def prepare_database(args: argparse.Namespace, env: dict[str, str]) -> None:
    """A new, migrated database, an empty data folder and an empty Redis database; then Django in this process.

    The data folder goes with the database: files an earlier run left there
    would lie at the keys this run writes (the institution codes start again),
    and replacing each one would free its blocks in the middle of a timed run.
    """
    import psycopg
    import redis

    retire(Path(env["CLINICNET_DATA_DIR"]), args.workdir)

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    os.environ.update(env)
    import django

    django.setup()


def drop_queued_tasks(env: dict[str, str]) -> None:
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()


_institutions = iter(range(80_000_001, 89_999_999))


@dataclass
class Tenant:
    """A fresh institution with a DIMSE AE title, an uploader with a token, and their session login."""

    code: str
    ae_title: str
    username: str
    password: str
    token: str
    institution_id: int


def new_tenant(label: str) -> Tenant:
    from imaging.models import Study  # noqa: F401  (apps ready)
    from institutions.models import AETitle, Institution, Membership, Role, User
    from institutions.tokens import token_create

    code = str(next(_institutions))
    institution = Institution.objects.create(code=code, name_ko=f"벤치 {label}", kind=Institution.Kind.HEALTH_CENTER)
    ae_title = f"B{code[-7:]}"
    AETitle.objects.create(institution=institution, ae_title=ae_title)
    password = uuid.uuid4().hex
    user = User.objects.create_user(username=f"bench{code}", email=f"bench{code}@example.org", password=password)
    Membership.objects.create(user=user, institution=institution, role=Role.CLINIC_STAFF)
    _token, raw = token_create(user=user, name="ingest bench")
    return Tenant(code, ae_title, user.username, password, raw, institution.pk)


def previews_done(institution_id: int) -> tuple[int, int]:
    """(instances with a preview outcome, instances) of the institution."""
    from imaging.models import Instance

    instances = Instance.objects.filter(institution_id=institution_id)
    waiting = instances.filter(preview_status__in=["pending", "rendering"]).count()
    total = instances.count()
    return total - waiting, total


# --- the studies -------------------------------------------------------------------------------


def studies(workdir: Path) -> dict[str, list[Path]]:
    from bench.make_ct_study import make_ct_study

    found = {}
    for index, name in enumerate(STUDIES):
        folder = workdir / "studies" / name
        files = sorted(folder.glob("CT*.dcm")) if folder.exists() else []
        if len(files) != SLICES:
            shutil.rmtree(folder, ignore_errors=True)
            print(f"writing study {name} ({SLICES} slices) …", file=sys.stderr)
            files = make_ct_study(folder, slices=SLICES, patient_id=f"BENCH{index:04d}")
        found[name] = files
    return found


def megabytes(files: list[Path]) -> float:
    return sum(path.stat().st_size for path in files) / 1e6


# --- disk and parsing baselines ------------------------------------------------------------------


def disk_copy(files: list[Path], folder: Path) -> float:
    """Seconds to copy the files' bytes into new files, each fsync'ed (the source is in the page cache)."""
    retire(folder, folder.parent)
    folder.mkdir(parents=True)
    for path in files:  # warm the page cache as the servers' sources are
        path.read_bytes()
    start = time.perf_counter()
    for path in files:
        with path.open("rb") as source, (folder / path.name).open("wb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
            target.flush()
            os.fsync(target.fileno())
    seconds = time.perf_counter() - start
    retire(folder, folder.parent)
    return seconds


def parse_pydicom(files: list[Path]) -> float:
    import pydicom

    start = time.perf_counter()
    for path in files:
        pydicom.dcmread(path, stop_before_pixels=True)
    return time.perf_counter() - start


def parse_ours(files: list[Path]) -> float:
    from imaging.dicom.header import parse_header

    start = time.perf_counter()
    for path in files:
        parse_header(path)
    return time.perf_counter() - start


# --- C-STORE ---------------------------------------------------------------------------------------


def storescu(files: list[Path], port: int, calling: str, called: str) -> float:
    program = require("storescu", "dcmtk")
    start = time.perf_counter()
    subprocess.run(
        [program, "-aet", calling, "-aec", called, "127.0.0.1", str(port), *map(str, files)],
        env={**os.environ, "TCP_NODELAY": "1"},
        check=True,
    )
    return time.perf_counter() - start


def pynetdicom_scu(files: list[Path], port: int, calling: str, called: str) -> float:
    """One association, the files' own bytes (no decoding), TCP_NODELAY on the socket."""
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE, _config
    from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

    _config.STORE_SEND_CHUNKED_DATASET = True
    _config.LOG_HANDLER_LEVEL = "none"
    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    start = time.perf_counter()
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        raise SystemExit(f"pynetdicom SCU: no association with port {port}")
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for path in files:
            status = assoc.send_c_store(path)
            if status.Status != 0:
                raise SystemExit(f"pynetdicom SCU: {path.name}: status 0x{status.Status:04X}")
    finally:
        assoc.release()
    return time.perf_counter() - start


# --- STOW-RS -------------------------------------------------------------------------------------


def stow_bodies(files: list[Path]) -> tuple[str, list[bytes]]:
    boundary = f"bench-{uuid.uuid4().hex}"
    bodies = []
    for start in range(0, len(files), BATCH):
        parts = []
        for path in files[start : start + BATCH]:
            parts.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
            parts.append(path.read_bytes())
            parts.append(b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        bodies.append(b"".join(parts))
    return boundary, bodies


def stow_client(port: int, path: str, token: str, files: list[Path], ready: Any, go: Any, result: Any) -> None:
    """One client process: POST the files in batches over one keep-alive connection."""
    try:
        _stow_client(port, path, token, files, ready, go, result)
    except Exception as exc:  # noqa: BLE001  (reported by the parent, which would wait otherwise)
        ready.set()
        result.put(f"{type(exc).__name__}: {exc}")


def _stow_client(port: int, path: str, token: str, files: list[Path], ready: Any, go: Any, result: Any) -> None:
    boundary, bodies = stow_bodies(files)
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    headers["Accept"] = "application/dicom+json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ready.set()
    go.wait()
    start = time.perf_counter()
    for body in bodies:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200:
            result.put(f"HTTP {response.status}: {answer[:300]!r}")
            return
    result.put(time.perf_counter() - start)
    conn.close()


def stow(ports: list[int], path: str, tokens: list[str], per_client: list[list[Path]]) -> float:
    """Wall time of all clients together (they start at the same moment)."""
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    readies, processes = [], []
    for index, files in enumerate(per_client):
        ready = context.Event()
        process = context.Process(
            target=stow_client,
            args=(ports[index % len(ports)], path, tokens[index], files, ready, go, results),
        )
        process.start()
        readies.append(ready)
        processes.append(process)
    for ready in readies:
        ready.wait(120)
    start = time.perf_counter()
    go.set()
    outcomes = [results.get(timeout=1200) for _ in processes]
    seconds = time.perf_counter() - start
    for process in processes:
        process.join()
    problems = [outcome for outcome in outcomes if isinstance(outcome, str)]
    if problems:
        raise SystemExit(f"STOW-RS failed: {problems[0]}")
    return seconds


# --- Orthanc ------------------------------------------------------------------------------------


class Orthanc:
    """Orthanc with the ingest config, on loopback ports, with a new storage folder each start."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.server: Server | None = None
        self.http_port = 0
        self.dicom_port = 0

    def start(self) -> Orthanc:
        program = require("Orthanc", "orthanc")
        if not ORTHANC_PLUGIN.exists():
            apt_install("orthanc-dicomweb", "Orthanc's DICOMweb plugin")
        global ORTHANC_VERSION
        ORTHANC_VERSION = subprocess.run([program, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        folder = self.workdir / "orthanc"
        retire(folder, self.workdir)
        (folder / "storage").mkdir(parents=True)
        self.http_port, self.dicom_port = free_port(), free_port()
        config = (
            ORTHANC_CONFIG.read_text()
            .replace("@STORAGE@", str(folder / "storage"))
            .replace("@HTTP_PORT@", str(self.http_port))
            .replace("@DICOM_PORT@", str(self.dicom_port))
        )
        (folder / "orthanc.json").write_text(config)
        # DCMTK, under Orthanc's SCP, turns Nagle off only when TCP_NODELAY is set.
        env = {**os.environ, "TCP_NODELAY": "1"}
        self.server = Server("orthanc", [program, str(folder / "orthanc.json")], env, log=folder / "orthanc.log")
        self.server.start()
        wait_for_port(self.http_port)
        wait_for_port(self.dicom_port)
        return self

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def instances(self) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        conn.request("GET", "/statistics")
        return int(json.loads(conn.getresponse().read())["CountInstances"])

    def stop(self) -> None:
        if self.server:
            self.server.stop()
        retire(self.workdir / "orthanc", self.workdir)


@contextlib.contextmanager
def orthanc(workdir: Path) -> Iterator[Orthanc]:
    server = Orthanc(workdir).start()
    try:
        yield server
    finally:
        server.stop()


# --- our servers ----------------------------------------------------------------------------------


@contextlib.contextmanager
def our_scp(env: dict[str, str], workdir: Path) -> Iterator[Server]:
    port = free_port()
    args = [PYTHON, "manage.py", "dicom_scp", "--port", str(port)]
    server = Server("dicom_scp", args, env, port=port, log=workdir / "dicom_scp.log").start()
    try:
        yield server
    finally:
        server.stop()


def web_servers() -> list[str]:
    """The web server ClinicNet runs (`manage.py serve`: uvicorn)."""
    return ["serve"]


@contextlib.contextmanager
def our_web(env: dict[str, str], workdir: Path, processes: int = 2, server: str = "serve") -> Iterator[list[Server]]:
    servers = []
    try:
        for index in range(processes):
            port = free_port()
            args = [PYTHON, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
            log = workdir / f"{server}{index}.log"
            servers.append(Server(f"{server}{index}", args, env, port=port, log=log).start())
        yield servers
    finally:
        for running in servers:
            running.stop()


@contextlib.contextmanager
def celery_workers(env: dict[str, str], workdir: Path, queues: str = "emergency,default") -> Iterator[Server]:
    """One Celery worker with two prefork processes, consuming *queues*, answering pings before we go on."""
    args = [
        str(Path(PYTHON).parent / "celery"), "-A", "clinicnet", "worker", "-l", "warning",
        "-Q", queues, "--concurrency", "2", "--prefetch-multiplier", "1", "-n", f"bench-{uuid.uuid4().hex[:8]}@%h",
    ]  # fmt: skip
    server = Server("celery", args, env, log=workdir / "celery.log").start()
    try:
        from clinicnet.celery import app

        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline:
                raise SystemExit("the Celery workers did not answer a ping within 60 s")
        yield server
    finally:
        server.stop()


def start_consuming(queue: str) -> float:
    """Tell the running workers to consume *queue*; returns the moment (perf_counter) they were told."""
    from clinicnet.celery import app

    moment = time.perf_counter()
    if not app.control.add_consumer(queue, reply=True, timeout=5):
        raise SystemExit(f"no worker acknowledged consuming {queue}")
    return moment


def wait_for_previews(institution_id: int, expected: int, timeout: float = 300) -> float:
    """Seconds until every instance of the institution has a preview outcome."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        done, total = previews_done(institution_id)
        if total >= expected and done == total:
            return time.perf_counter() - start
        time.sleep(0.02)
    raise SystemExit(f"previews not done after {timeout} s: {previews_done(institution_id)}")


# --- memory: a 1 GB zip through the web upload ----------------------------------------------------


def big_zip(files: list[Path], target: Path, megabytes_wanted: int) -> tuple[int, int]:
    """Deflated copies of the study with new UIDs until the zip reaches the size; (entries, bytes)."""
    import pydicom
    from pydicom.uid import generate_uid

    if target.exists() and target.stat().st_size >= megabytes_wanted * 1024 * 1024:
        with zipfile.ZipFile(target) as archive:
            return len(archive.infolist()), target.stat().st_size
    datasets = [pydicom.dcmread(path) for path in files]
    entries = 0
    print(f"writing a {megabytes_wanted} MB zip …", file=sys.stderr)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        copy = 0
        while target.stat().st_size < megabytes_wanted * 1024 * 1024:
            study, series = generate_uid(), generate_uid()
            for ds in datasets:
                ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                archive.writestr(f"CD{copy:03d}/DICOM/IM{ds.InstanceNumber:05d}", buffer.getvalue())
                entries += 1
            copy += 1
            archive.fp.flush()  # type: ignore[union-attr]
    return entries, target.stat().st_size


def sign_in(port: int, username: str, password: str) -> dict[str, str]:
    """Cookies of a session signed in through the real login form."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/accounts/login/")
    response = conn.getresponse()
    page = response.read().decode()
    cookies = _cookies(response)
    marker = 'name="csrfmiddlewaretoken" value="'
    csrf = page[page.index(marker) + len(marker) :].split('"', 1)[0]
    form = f"csrfmiddlewaretoken={csrf}&username={username}&password={password}"
    conn.request(
        "POST",
        "/accounts/login/",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": _cookie_header(cookies)},
    )
    response = conn.getresponse()
    response.read()
    cookies.update(_cookies(response))
    if response.status != 302 or "sessionid" not in cookies:
        raise SystemExit(f"sign-in failed: HTTP {response.status}")
    return cookies


def _cookies(response: http.client.HTTPResponse) -> dict[str, str]:
    found = {}
    for header, value in response.getheaders():
        if header.lower() == "set-cookie":
            name, _, rest = value.partition("=")
            found[name.strip()] = rest.split(";", 1)[0]
    return found


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def upload_zip(port: int, cookies: dict[str, str], path: Path) -> tuple[float, dict[str, int]]:
    """POST /upload/files/ with the zip streamed from disk; (seconds, outcome counts)."""
    boundary = f"bench-{uuid.uuid4().hex}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    conn.putrequest("POST", "/upload/files/")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + path.stat().st_size + len(tail)))
    conn.putheader("Cookie", _cookie_header(cookies))
    conn.putheader("X-CSRFToken", cookies["csrftoken"])
    conn.endheaders()
    start = time.perf_counter()
    conn.send(head)
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            conn.send(chunk)
    conn.send(tail)
    response = conn.getresponse()
    answer = response.read()
    seconds = time.perf_counter() - start
    if response.status != 200:
        raise SystemExit(f"upload failed: HTTP {response.status}: {answer[:300]!r}")
    counts: dict[str, int] = {}
    for result in json.loads(answer)["results"]:
        counts[result["outcome"]] = counts.get(result["outcome"], 0) + 1
    return seconds, counts


def rss_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return 0


# --- profiling ------------------------------------------------------------------------------------


@contextlib.contextmanager
def profiled(pid: int, output: Path, enabled: bool) -> Iterator[None]:
    """py-spy (in the venv, for the bench only) samples *pid* while the block runs."""
    if not enabled:
        yield
        return
    py_spy = Path(PYTHON).parent / "py-spy"
    if not py_spy.exists():
        raise SystemExit("--profile needs py-spy in the venv: .venv/bin/pip install py-spy==0.4.3")
    recorder = subprocess.Popen(
        [str(py_spy), "record", "-p", str(pid), "-o", str(output), "-f", "raw", "-r", "250", "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    try:
        yield
    finally:
        recorder.send_signal(2)
        recorder.wait(60)


def print_profile(path: Path, what: str, top: int = 25) -> None:
    """Self and inclusive sample counts of the busiest functions in a py-spy raw profile."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1].rstrip(")") for frame in stack.split(";")[1:]]
        if not frames or "sleep" in frames[-1] or "select" in frames[-1] or "wait" in frames[-1].lower():
            continue  # idle threads
        total += int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
    print(f"\nProfile of {what} ({total} busy samples):")
    for title, table in (("inclusive", inclusive), ("self", own)):
        print(f"  {title}:")
        for frame, count in sorted(table.items(), key=lambda item: -item[1])[:top]:
            print(f"    {100 * count / max(total, 1):5.1f}%  {frame}")


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    instances: int
    megabytes: float
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # CPU seconds of the server processes, per run

    def figures(self) -> tuple[float, float, float]:
        median = statistics.median(self.seconds)
        return median, self.instances / median, self.megabytes / median

    def line(self) -> str:
        median, per_second, mb_per_second = self.figures()
        spread = f"{min(self.seconds):.2f}–{max(self.seconds):.2f}" if len(self.seconds) > 1 else ""
        cpu = f"{1000 * statistics.median(self.cpu) / self.instances:.1f}" if self.cpu else ""
        return (
            f"| {self.what} | {self.instances} | {median:.2f} | {spread} | {per_second:,.0f} | {mb_per_second:,.0f} "
            f"| {cpu} |"
        )


def cpu_seconds(*pids: int) -> float:
    """User + system CPU time the processes have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def settle() -> None:
    """Write out what earlier runs left in the page cache, and let the disk go quiet.

    Otherwise a run starts while the kernel still writes back (or the file system
    still removes) the previous run's 158 MB, and its fsyncs queue behind that: each
    server would pay for the other's previous round.
    """
    os.sync()
    time.sleep(1)


def timed_with_cpu(row: Row, pids: list[int], run: Callable[..., float], *args: Any) -> None:
    """Append the seconds ``run(*args)`` returns, and the CPU the server processes used meanwhile."""
    settle()
    before = cpu_seconds(*pids)
    row.seconds.append(run(*args))
    row.cpu.append(cpu_seconds(*pids) - before)


def round_ratios(ours: Row, theirs: Row) -> str:
    """Our throughput over Orthanc's in each round, and their median, e.g. "0.85, 0.91, 0.77 (median 0.85)"."""
    ratios = [theirs_s / ours_s for ours_s, theirs_s in zip(ours.seconds, theirs.seconds, strict=True)]
    return ", ".join(f"{ratio:.2f}" for ratio in ratios) + f" (median {statistics.median(ratios):.2f})"


def machine() -> str:
    model = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError):
        memory = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024)
    return f"CPU: {model}, {os.cpu_count()} cores, {memory} GiB RAM; Python {platform.python_version()}"


def load() -> str:
    return "load average " + load_average()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/clinicnet-ingest-bench"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="disk,cstore,stow,previews,memory")
    parser.add_argument("--database", default="clinicnet_bench_ingest")
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--zip-mb", type=int, default=1024)
    parser.add_argument("--no-orthanc", action="store_true", help="only our side")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy: our SCP during storescu, a web process during 4-client STOW"
    )
    args = parser.parse_args(argv)
    wanted = set(args.only.split(","))
    args.workdir.mkdir(parents=True, exist_ok=True)
    atexit.register(remove_retired, args.workdir)  # after the last timed run (see retire)
    env = our_env(args)
    prepare_database(args, env)
    study_files = studies(args.workdir)
    files = study_files["A"]
    size = megabytes(files)
    # One small real file sent first to each fresh server, untimed (pydicom's CT_small.dcm).
    from imaging.testing import testdata_path

    warm = testdata_path("CT_small.dcm")
    print(machine())
    print(
        f"Command: {shlex.join(['python', '-m', 'bench.ingest_bench', *(argv if argv is not None else sys.argv[1:])])}"
    )
    print(f"Study: {len(files)} slices, 512×512 int16 CT, Explicit VR Little Endian, {size:.1f} MB")
    print(f"At the start: {load()}\n")
    rows: list[Row] = []
    pairs: list[tuple[str, Row, Row]] = []  # ours and Orthanc's, measured round by round side by side
    notes: list[str] = []

    if "disk" in wanted:
        copy = Row("plain copy of the study's bytes to new files, fsync each (disk baseline)", len(files), size)
        parse = Row("pydicom header parse (dcmread, stop_before_pixels)", len(files), size)
        ours = Row("our parse_header (validation + DICOM JSON metadata)", len(files), size)
        for _round in range(args.rounds):
            copy.seconds.append(disk_copy(files, args.workdir / "copy"))
            parse.seconds.append(parse_pydicom(files))
            ours.seconds.append(parse_ours(files))
        rows += [copy, parse, ours]

    if "cstore" in wanted:
        cases = [
            ("C-STORE, storescu (dcmtk, TCP_NODELAY=1), one association", storescu),
            ("C-STORE, pynetdicom SCU (raw bytes, TCP_NODELAY), one association", pynetdicom_scu),
        ]
        for label, client in cases:
            ours = Row(f"ClinicNet: {label}", len(files), size)
            theirs = Row(f"Orthanc: {label}", len(files), size)
            for _round in range(args.rounds):
                tenant = new_tenant("cstore")
                with our_scp(env, args.workdir) as scp:
                    port = scp.port or 0
                    storescu([warm], port, tenant.ae_title, "CLINICNET")  # first use: imports, connections
                    with profiled(scp.pid, args.workdir / "profile-scp.txt", args.profile and client is storescu):
                        timed_with_cpu(ours, [scp.pid], client, files, port, tenant.ae_title, "CLINICNET")
                if not args.no_orthanc:
                    with orthanc(args.workdir) as server:
                        storescu([warm], server.dicom_port, "BENCH", "ORTHANC")
                        pid, dicom_port = server.pid, server.dicom_port
                        timed_with_cpu(theirs, [pid], client, files, dicom_port, "BENCH", "ORTHANC")
                        assert server.instances() == len(files) + 1
            rows.append(ours)
            if theirs.seconds:
                rows.append(theirs)
                pairs.append((label, ours, theirs))
        drop_queued_tasks(env)

    if "stow" in wanted:
        concurrent = [study_files[name] for name in STUDIES[1:]]
        cases = [
            (f"STOW-RS, 1 client, batches of {BATCH}", [files]),
            (f"STOW-RS, 4 concurrent clients, batches of {BATCH}, one study each", concurrent),
        ]
        for label, per_client in cases:
            count = sum(len(group) for group in per_client)
            megs = sum(megabytes(group) for group in per_client)
            ours = Row(f"ClinicNet: {label}", count, megs)
            theirs = Row(f"Orthanc: {label}", count, megs)
            for _round in range(args.rounds):
                tenants = [new_tenant("stow") for _ in per_client]
                tokens = [t.token for t in tenants]
                with our_web(env, args.workdir) as web:
                    ports = [server.port or 0 for server in web]
                    for index, port in enumerate(ports):  # first use of each process: imports, connections
                        stow([port], "/dicomweb/studies", [tokens[index % len(tokens)]], [[warm]])
                    pids = [server.pid for server in web]
                    with profiled(pids[0], args.workdir / "profile-web.txt", args.profile and len(tokens) > 1):
                        timed_with_cpu(ours, pids, stow, ports, "/dicomweb/studies", tokens, per_client)
                if not args.no_orthanc:
                    with orthanc(args.workdir) as server:
                        http_port, blank = server.http_port, [""] * len(per_client)
                        stow([http_port], "/dicom-web/studies", [""], [[warm]])
                        timed_with_cpu(theirs, [server.pid], stow, [http_port], "/dicom-web/studies", blank, per_client)
                        assert server.instances() == count + 1
            rows.append(ours)
            if theirs.seconds:
                rows.append(theirs)
                pairs.append((label, ours, theirs))
        drop_queued_tasks(env)
        notes.append(
            "ClinicNet STOW-RS runs in two web processes (client i → process i mod 2); "
            "Orthanc in one process with 50 HTTP threads."
        )

    preview_lines: list[str] = []
    if "previews" in wanted:
        drop_queued_tasks(env)
        for label, upload in (
            ("C-STORE (storescu)", "cstore"),
            (f"STOW-RS (1 client, batches of {BATCH})", "stow"),
        ):
            tenant = new_tenant("previews")
            with celery_workers(env, args.workdir):
                if upload == "cstore":
                    with our_scp(env, args.workdir) as scp:
                        uploaded = storescu(files, scp.port or 0, tenant.ae_title, "CLINICNET")
                else:
                    with our_web(env, args.workdir, processes=1) as web:
                        uploaded = stow([web[0].port or 0], "/dicomweb/studies", [tenant.token], [files])
                after = wait_for_previews(tenant.institution_id, len(files))
            preview_lines.append(f"| upload by {label} with the 2 workers running | {uploaded:.2f} | {after:.2f} | – |")
        # Rendering alone: the workers run but consume another queue while the study is stored;
        # then they are told to take the preview queue, and the clock starts.
        tenant = new_tenant("previews")
        with celery_workers(env, args.workdir, queues="bench-hold"):
            with our_scp(env, args.workdir) as scp:
                storescu(files, scp.port or 0, tenant.ae_title, "CLINICNET")
            told = start_consuming("default")
            wait_for_previews(tenant.institution_id, len(files))
            alone = time.perf_counter() - told
        preview_lines.append(
            f"| rendering alone (study already stored, workers started after) | – | {alone:.2f} | "
            f"{1000 * alone * 2 / len(files):.1f} |"
        )

    memory_lines: list[str] = []
    if "memory" in wanted:
        entries, zipped = big_zip(files, args.workdir / "big.zip", args.zip_mb)
        for web_server in web_servers():
            tenant = new_tenant("memory")
            with our_web(env, args.workdir, processes=1, server=web_server) as web:
                server = web[0]
                cookies = sign_in(server.port or 0, tenant.username, tenant.password)
                before = rss_kib(server.pid, "VmRSS")
                seconds, counts = upload_zip(server.port or 0, cookies, args.workdir / "big.zip")
                peak = rss_kib(server.pid, "VmHWM")
            drop_queued_tasks(env)
            memory_lines.append(
                f"| {web_server} | {zipped / 1e6:,.0f} MB zip, {entries} entries (deflate level 1) | {seconds:.1f} | "
                f"{entries / seconds:,.0f} | {before / 1024:,.0f} | {peak / 1024:,.0f} | "
                + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
                + " |"
            )

    print("| what | instances | median s | range s | instances/s | MB/s | server CPU ms/instance |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row.line())
    if pairs:
        print(
            "\nClinicNet's instances/s over Orthanc's, round by round (each round runs the two one after "
            "the other, so a slower or faster spell of the machine touches both):\n"
        )
        for label, ours, theirs in pairs:
            print(f"- {label}: {round_ratios(ours, theirs)}")
    if preview_lines:
        print("\nPreviews (512 px JPEG per slice + series thumbnail), 2 Celery worker processes, Redis broker:\n")
        print("| run | upload s | upload end → study ready, s | ms per slice per worker |")
        print("|---|---:|---:|---:|")
        print("\n".join(preview_lines))
    if memory_lines:
        print("\nWeb upload of a large zip (POST /upload/files/, one server process, signed in):\n")
        print("| server | upload | seconds | instances/s | RSS before, MB | peak RSS (VmHWM), MB | results |")
        print("|---|---|---:|---:|---:|---:|---|")
        print("\n".join(memory_lines))
    for note in notes:
        print(f"\n{note}")
    if not args.no_orthanc and {"cstore", "stow"} & wanted:
        print(f"\nOrthanc: {ORTHANC_VERSION or 'Orthanc'} with {ORTHANC_CONFIG.relative_to(ROOT)}")
    print(f"\nAt the end: {load()}")
    for name, what in (("scp", "the SCP during storescu"), ("web", "a web process during STOW-RS from 4 clients")):
        if args.profile and (args.workdir / f"profile-{name}.txt").exists():
            print_profile(args.workdir / f"profile-{name}.txt", what)


if __name__ == "__main__":
    main()
