"""Time ClinicNet's DICOMweb service beside Orthanc 1.10 + its DICOMweb plugin, over HTTP, in one run.

Run from the repository root (PostgreSQL on 127.0.0.1:5432 as user postgres)::

    .venv/bin/python -m bench.dicomweb_bench                        # 5,000 studies beside Orthanc, then 100k/1M
    .venv/bin/python -m bench.dicomweb_bench --studies 1000 --total-studies 20000 --total-instances 200000
    .venv/bin/python -m bench.dicomweb_bench --skip-orthanc --skip-large
    .venv/bin/python -m bench.dicomweb_bench --workers 1 --quiet-load 1.5   # one process; wait for a quiet machine

What it does:

1. Creates a dedicated PostgreSQL database ``clinicnet_bench`` (dropped and
   made anew every run), migrates it, and makes one clinic, one physician and
   a personal access token.
2. Writes ``--studies`` small studies as DICOM files with pydicom (one
   header-only instance each; Korean patient names with a Hangul phonetic
   group, ten years of study dates, a modality mix where about one in eight
   is CT) and a synthetic 300-slice 512 × 512 CT (the phantom of
   ``bench.render_bench``, Explicit VR Little Endian, 525 KB a slice).
3. Loads the same files into both servers: ClinicNet through the one ingest
   path (``IngestSession``, previews rendered as the preview task does),
   Orthanc through its REST API (``POST /instances``).
4. Starts ClinicNet in its production shape, ``manage.py serve --workers N``
   (uvicorn, one worker process per core by default, as in docker-compose.yml;
   ``DATABASE_POOL=true``; ``REDIS_URL`` for the shared cache and channel
   layer), and Orthanc (``apt-get install orthanc orthanc-dicomweb`` when
   missing, config from ``bench/orthanc/dicomweb.json``: 50 HTTP threads on
   all cores, temporary storage) on loopback ports, and times the same
   requests against both, interleaved, with one keep-alive HTTP connection
   each: QIDO-RS searches, the CT's study ``/metadata``, one frame, every
   frame in turn (and over 4 connections), and a rendered slice as JPEG and
   PNG. ClinicNet is called with a bearer token (the token lookup, the access
   check and the audit of every request are in its figures); Orthanc without
   authentication. ``--quiet-load`` first waits for a quiet machine.
5. Adds rows straight into the index with PostgreSQL COPY up to
   ``--total-studies`` studies and ``--total-instances`` instances and times
   the QIDO-RS searches again (ClinicNet only): p50 and p95.

Prints the machine, the command and a table; paste it into bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

from bench.machine import load_average, wait_for_quiet

REPO = Path(__file__).resolve().parent.parent
DATABASE = "clinicnet_bench"
PG = "postgres://postgres@127.0.0.1:5432"
ORTHANC_CONFIG = REPO / "bench" / "orthanc" / "dicomweb.json"
SURNAMES = [  # (romanised, Hangul, share in %) — the commonest Korean surnames
    ("KIM", "김", 21.5), ("LEE", "이", 14.7), ("PARK", "박", 8.4), ("CHOI", "최", 4.7), ("JUNG", "정", 4.4),
    ("KANG", "강", 2.3), ("CHO", "조", 2.1), ("YOON", "윤", 2.1), ("JANG", "장", 2.0), ("LIM", "임", 1.7),
    ("HAN", "한", 1.5), ("OH", "오", 1.5), ("SEO", "서", 1.5), ("SHIN", "신", 1.5), ("KWON", "권", 1.4),
    ("HWANG", "황", 1.4), ("AHN", "안", 1.4), ("SONG", "송", 1.3), ("JEON", "전", 1.1), ("HONG", "홍", 1.1),
]  # fmt: skip
GIVEN = [
    ("MINJUN", "민준"), ("SEOYEON", "서연"), ("JIHO", "지호"), ("SEOJUN", "서준"), ("HAEUN", "하은"),
    ("DOYUN", "도윤"), ("JIWOO", "지우"), ("YEJUN", "예준"), ("SUAH", "수아"), ("SIWOO", "시우"),
    ("JIAN", "지안"), ("HAYUN", "하윤"), ("EUNWOO", "은우"), ("YUNA", "유나"), ("MINSEO", "민서"),
    ("JUWON", "주원"), ("YOUNGSOO", "영수"), ("YOUNGHEE", "영희"), ("SUNGHO", "성호"), ("MIKYUNG", "미경"),
    ("JUNGHOON", "정훈"), ("EUNJI", "은지"), ("HYUNWOO", "현우"), ("SOYEON", "소연"), ("DONGHYUN", "동현"),
    ("JIYOUNG", "지영"), ("SANGWOO", "상우"), ("HYEJIN", "혜진"), ("KYUNGSOO", "경수"), ("SEUNGMIN", "승민"),
]  # fmt: skip
MODALITIES = [("CR", 30), ("DX", 18), ("US", 20), ("CT", 12.5), ("MR", 9), ("MG", 6), ("XA", 2), ("NM", 2.5)]
FIRST_DAY = date(2016, 1, 1)
DAYS = 3652
# "PARK*SEO*" rather than "PARK^SEO*": Orthanc 1.10's QIDO-RS matches nothing when a PN value
# holds the component separator ^ (checked against DOE^JOHN too), so that would not compare.
NAME_QUERY = "PARK*SEO*"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
YEAR = ("20230101", "20231231")


# --------------------------------------------------------------------------- the machine


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    pg = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "show server_version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"CPU: {cpu}, {os.cpu_count()} cores{memory}; Python {platform.python_version()}; PostgreSQL {pg}"


# --------------------------------------------------------------------------- data


def _patient_name(rng: random.Random) -> tuple[str, str]:
    surname = rng.choices(SURNAMES, weights=[s[2] for s in SURNAMES])[0]
    given = rng.choice(GIVEN)
    return f"{surname[0]}^{given[0]}=={surname[1]}^{given[1]}", f"{surname[0]}{given[0]}"


def _modality(rng: random.Random) -> str:
    return rng.choices([m for m, _w in MODALITIES], weights=[w for _m, w in MODALITIES])[0]


def write_small_studies(folder: Path, count: int, seed: int = 7) -> list[Path]:
    """*count* studies of one header-only instance each, as DICOM files."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rng = random.Random(seed)
    paths = []
    sop_class = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}
    patients = max(count * 2 // 3, 1)
    names = [_patient_name(rng) for _ in range(patients)]
    for number in range(count):
        patient = rng.randrange(patients)
        modality = _modality(rng)
        day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = sop_class.get(modality, "1.2.840.10008.5.1.4.1.1.7")
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = names[patient][0]
        ds.PatientID = f"P{patient:07d}"
        ds.PatientBirthDate = f"{1930 + patient % 80}0{1 + patient % 9}15"
        ds.PatientSex = "MF"[patient % 2]
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.StudyDate = ds.SeriesDate = day.strftime("%Y%m%d")
        ds.StudyTime = f"{8 + rng.randrange(10):02d}{rng.randrange(60):02d}00"
        ds.AccessionNumber = f"A{number:08d}"
        ds.StudyID = str(number)
        ds.StudyDescription = f"{modality} examination"
        ds.ReferringPhysicianName = rng.choice(["LEE^SANGHOON", "PARK^JIYEON", "KIM^DOHYUN"])
        ds.Modality = modality
        ds.SeriesNumber = 1
        ds.InstanceNumber = 1
        path = folder / f"study-{number:06d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_ct(folder: Path, slices: int) -> list[Path]:
    """A 300-slice 512 × 512 CT series (the render benchmark's phantom), one file per slice."""
    import numpy as np
    from pydicom.uid import generate_uid

    from bench.render_bench import ct_dataset, ct_phantom

    study, series = generate_uid(), generate_uid()
    base = ct_phantom()
    paths = []
    noise = np.random.default_rng(1)
    for index in range(slices):
        hu = base + noise.normal(0, 12, base.shape).astype(np.int16) * (base > -1500)
        ds = ct_dataset(hu.astype(np.int16))
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = "HONG^GILDONG=洪^吉洞=홍^길동"
        ds.PatientID = "BENCHCT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.StudyDate = ds.SeriesDate = "20240315"
        ds.StudyTime = "101500"
        ds.AccessionNumber = "CT300"
        ds.StudyDescription = "CT chest abdomen"
        ds.SeriesNumber, ds.InstanceNumber = 2, index + 1
        ds.SliceThickness = 1.0
        ds.ImagePositionPatient = [-250.0, -250.0, -float(index)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.9765625, 0.9765625]
        ds.SliceLocation = -float(index)
        path = folder / f"ct-{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- the ClinicNet side


def reset_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")


def django_setup(data_dir: Path) -> None:
    os.environ.update(
        DATABASE_URL=f"{PG}/{DATABASE}",
        CLINICNET_DATA_DIR=str(data_dir),
        TASK_MODE="eager",
        DJANGO_SETTINGS_MODULE="clinicnet.settings",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_people() -> tuple[object, object, str]:
    from institutions.models import Institution, Membership, Role, User
    from institutions.tokens import token_create

    center = Institution.objects.create(code="90000001", name_ko="벤치보건소", kind=Institution.Kind.HEALTH_CENTER)
    clinic = Institution.objects.create(
        code="90000002", name_ko="벤치의원", kind=Institution.Kind.CLINIC, health_center=center
    )
    user = User.objects.create_user(username="bench", email="bench@example.org", password="bench-password-1")
    Membership.objects.create(user=user, institution=clinic, role=Role.PHYSICIAN)
    return clinic, user, token_create(user=user, name="bench")[1]


def ingest(clinic: object, paths: list[Path]) -> float:
    from imaging.ingest import EntryPoint, IngestSession

    started = time.perf_counter()
    for start in range(0, len(paths), 500):
        with IngestSession(institution=clinic, entry_point=EntryPoint.IMPORT) as session:  # type: ignore[arg-type]
            for path in paths[start : start + 500]:
                result = session.add_file(path)
                assert result.ok, result.reason
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def clinicnet_server(data_dir: Path, workers: int, redis_url: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{DATABASE}",
        "DATABASE_POOL": "true",
        "CLINICNET_DATA_DIR": str(data_dir),
        "TASK_MODE": "thread",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
        "REDIS_URL": redis_url,  # several workers share the cache (audit windows) and the channel layer
    }
    if not redis_url:
        env.pop("REDIS_URL")
    command = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers), "--log-level", "warning"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}/dicomweb"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


# --------------------------------------------------------------------------- the Orthanc side


def ensure_orthanc() -> str:
    binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    plugin = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
    if not Path(binary).exists() or not plugin.exists():
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
        subprocess.run(
            [*sudo, "apt-get", "install", "-y", "-qq", "orthanc", "orthanc-dicomweb"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return binary


@contextlib.contextmanager
def orthanc_server(work: Path) -> Iterator[str]:
    binary = ensure_orthanc()
    port = free_port()
    storage = work / "orthanc-storage"
    storage.mkdir()
    config = work / "orthanc.json"
    config.write_text(ORTHANC_CONFIG.read_text().replace("@STORAGE@", str(storage)).replace("@PORT@", str(port)))
    process = subprocess.Popen([binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/system")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def load_orthanc(root: str, paths: list[Path]) -> float:
    import requests

    session = requests.Session()
    started = time.perf_counter()
    for path in paths:
        response = session.post(f"{root}/instances", data=path.read_bytes())
        response.raise_for_status()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- timing


def timed(call: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Server:
    """One DICOMweb server as the benchmark sees it."""

    def __init__(self, name: str, root: str, headers: dict[str, str]) -> None:
        import requests

        self.name = name
        self.root = root
        self.session = requests.Session()
        self.session.headers.update(headers)

    def get(self, path: str, accept: str = "application/dicom+json", expect: int = 200) -> bytes:
        response = self.session.get(self.root + path, headers={"Accept": accept})
        if response.status_code != expect:
            raise RuntimeError(f"{self.name} {path}: {response.status_code} {response.text[:200]}")
        return response.content

    def count(self, path: str) -> int:
        body = self.get(path)
        return len(json.loads(body)) if body.strip() else 0


FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"'


def compare(servers: list[Server], cases: list[tuple[str, Callable[[Server], object]]], runs: int) -> list[list[str]]:
    """Run every case on every server in interleaved rounds; rows of name, server figures."""
    rows = []
    for label, case in cases:
        for server in servers:
            case(server)  # warm up
        times: dict[str, list[float]] = {server.name: [] for server in servers}
        for _round in range(10):
            for server in servers:
                times[server.name] += timed(lambda server=server, case=case: case(server), max(1, runs // 10))
        rows.append([label, *(f"{p(times[s.name], 0.5):.1f} / {p(times[s.name], 0.95):.1f}" for s in servers)])
        print(f"  {label}: " + ", ".join(f"{s.name} {rows[-1][1 + i]}" for i, s in enumerate(servers)), flush=True)
    return rows


# --------------------------------------------------------------------------- 100k / 1M rows


def bulk_rows(clinic_id: int, total_studies: int, total_instances: int, seed: int = 11) -> float:
    """Add index rows with COPY until the archive holds the totals (ClinicNet only)."""
    from django.db import connection

    from imaging.dicom.names import fold_for_search
    from imaging.models import Instance, Study

    rng = random.Random(seed)
    have_studies = Study.objects.count()
    have_instances = Instance.objects.count()
    studies = total_studies - have_studies
    if studies <= 0:
        return 0.0
    per_study, extra = divmod(max(studies, total_instances - have_instances), studies)
    started = time.perf_counter()
    patients = studies * 2 // 3
    with connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor() as cur:
            cur.execute("SELECT coalesce(max(id), 0) FROM imaging_patient")
            patient0 = cur.fetchone()[0] + 1
            cur.execute("SELECT coalesce(max(id), 0) FROM imaging_study")
            study0 = cur.fetchone()[0] + 1
            cur.execute("SELECT coalesce(max(id), 0) FROM imaging_series")
            series0 = cur.fetchone()[0] + 1
            cur.execute("SELECT coalesce(max(id), 0) FROM imaging_instance")
            instance0 = cur.fetchone()[0] + 1
            with cur.copy(
                "COPY imaging_patient (id, institution_id, issuer, patient_id, name, name_search, sex) FROM STDIN"
            ) as copy:
                for n in range(patients):
                    name, _ = _patient_name(rng)
                    copy.write_row((patient0 + n, clinic_id, "", f"B{n:08d}", name, fold_for_search(name), "MF"[n % 2]))
            series_id, instance_id = series0, instance0
            study_rows, series_rows, instance_rows = [], [], []
            for n in range(studies):
                modality = _modality(rng)
                day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
                uid = f"2.25.9{n}"
                series_count = 3
                in_study = per_study + (1 if n < extra else 0)
                study_rows.append(
                    (study0 + n, clinic_id, patient0 + rng.randrange(patients), uid, day, "101500", f"B{n:08d}",
                     str(n), f"{modality} examination", "KIM^DOHYUN", modality, series_count, in_study, "ready", 0)
                )  # fmt: skip
                for s in range(series_count):
                    in_series = in_study // series_count + (1 if s < in_study % series_count else 0)
                    series_rows.append((series_id, study0 + n, f"{uid}.{s}", modality, s + 1, in_series))
                    for i in range(in_series):
                        instance_rows.append(
                            (instance_id, clinic_id, study0 + n, series_id, f"{uid}.{s}.{i}", CT_STORAGE, i + 1,
                             EXPLICIT_LE, f"bench/{instance_id}", 1000, "0" * 64, 1, 512, 512, "{}", "ready")
                        )  # fmt: skip
                        instance_id += 1
                    series_id += 1
            with cur.copy(
                "COPY imaging_study (id, institution_id, patient_id, study_instance_uid, study_date, study_time, "
                "accession_number, study_id, description, referring_physician_name, modalities, number_of_series, "
                "number_of_instances, status, priority, created_at, updated_at) FROM STDIN"
            ) as copy:
                for row in study_rows:
                    copy.write_row((*row, "2024-01-01 00:00+00", "2024-01-01 00:00+00"))
            with cur.copy(
                "COPY imaging_series (id, study_id, series_instance_uid, modality, series_number, number_of_instances, "
                "description, body_part, thumbnail_key, created_at) FROM STDIN"
            ) as copy:
                for row in series_rows:
                    copy.write_row((*row, "", "", "", "2024-01-01 00:00+00"))
            with cur.copy(
                "COPY imaging_instance (id, institution_id, study_id, series_id, sop_instance_uid, sop_class_uid, "
                "instance_number, transfer_syntax_uid, storage_key, size, sha256, number_of_frames, rows, columns, "
                "metadata, preview_status, preview_error, created_at) FROM STDIN"
            ) as copy:
                for row in instance_rows:
                    copy.write_row((*row, "", "2024-01-01 00:00+00"))
            for table in ("imaging_patient", "imaging_study", "imaging_series", "imaging_instance"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                cur.execute(f"ANALYZE {table}")
        raw.commit()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=5000, help="studies loaded into both servers")
    parser.add_argument("--slices", type=int, default=300, help="slices of the synthetic CT")
    parser.add_argument("--total-studies", type=int, default=100_000)
    parser.add_argument("--total-instances", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100, help="timed requests per case and server")
    parser.add_argument("--skip-orthanc", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="ClinicNet worker processes (default: one per core)"
    )
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/14", help="Redis for ClinicNet ('' for none: one worker only)"
    )
    parser.add_argument("--quiet-load", type=float, default=0, help="before timing, wait for a 1-min load below this")
    parser.add_argument("--quiet-wait", type=float, default=900, help="wait at most this many seconds for it")
    args = parser.parse_args()
    if args.workers > 1 and not args.redis_url:
        parser.error("--workers > 1 needs --redis-url (manage.py serve refuses several workers without Redis)")

    print(machine())
    print("Command: python -m bench.dicomweb_bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    work = Path(tempfile.mkdtemp(prefix="dicomweb-bench-", dir=REPO / "var" if (REPO / "var").exists() else None))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    reset_database()
    data_dir = work / "clinicnet"
    data_dir.mkdir()
    django_setup(data_dir)
    clinic, _user, token = make_people()
    files = work / "files"
    (files / "small").mkdir(parents=True)
    (files / "ct").mkdir()
    small = write_small_studies(files / "small", args.studies)
    ct = write_ct(files / "ct", args.slices)
    print(f"Data: {len(small)} studies of one instance, and a {len(ct)}-slice 512x512 CT (Explicit VR LE)")
    print(f"Loaded into ClinicNet (IngestSession, previews included): {ingest(clinic, small + ct):.0f} s")

    from imaging.models import Instance

    slices = list(
        Instance.objects.filter(study__accession_number="CT300")
        .select_related("study", "series")
        .order_by("instance_number")
    )
    study_uid = slices[0].study.study_instance_uid
    series_uid = slices[0].series.series_instance_uid
    middle = slices[len(slices) // 2]
    instance_path = f"/studies/{study_uid}/series/{series_uid}/instances/{middle.sop_instance_uid}"
    frame_bytes = 512 * 512 * 2

    qido = [
        (f"QIDO studies PatientName={NAME_QUERY}", f"/studies?PatientName={NAME_QUERY}"),
        ("QIDO studies StudyDate one year, limit=25", f"/studies?StudyDate={YEAR[0]}-{YEAR[1]}&limit=25"),
        ("QIDO studies ModalitiesInStudy=CT (all)", "/studies?ModalitiesInStudy=CT"),
        ("QIDO studies ModalitiesInStudy=CT + one year",
         f"/studies?ModalitiesInStudy=CT&StudyDate={YEAR[0]}-{YEAR[1]}"),
    ]  # fmt: skip
    cases: list[tuple[str, Callable[[Server], object]]] = [
        (label, lambda server, path=path: server.get(path)) for label, path in qido
    ]
    cases += [
        (f"WADO-RS study /metadata ({len(ct)}-slice CT)", lambda server: server.get(f"/studies/{study_uid}/metadata")),
        ("WADO-RS one frame (512x512x16 bit)", lambda server: server.get(f"{instance_path}/frames/1", FRAME_ACCEPT)),
        ("rendered 512x512 slice, JPEG", lambda server: server.get(f"{instance_path}/rendered", "image/jpeg")),
        (
            "rendered 512x512 slice, JPEG, window=40,400",
            lambda server: server.get(f"{instance_path}/rendered?window=40,400,linear", "image/jpeg"),
        ),
        ("rendered 512x512 slice, PNG", lambda server: server.get(f"{instance_path}/rendered", "image/png")),
    ]

    frame_paths = [
        f"/studies/{study_uid}/series/{series_uid}/instances/{item.sop_instance_uid}/frames/1" for item in slices
    ]

    def all_frames(server: Server) -> None:
        for path in frame_paths:
            server.get(path, FRAME_ACCEPT)

    def all_frames_parallel(server: Server, connections: int = 4) -> None:
        # As a viewer loads a series: several connections at once (each thread its own session).
        from concurrent.futures import ThreadPoolExecutor

        sessions = [Server(server.name, server.root, dict(server.session.headers)) for _ in range(connections)]
        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(lambda n: [sessions[n].get(p, FRAME_ACCEPT) for p in frame_paths[n::connections]],
                          range(connections)))  # fmt: skip

    with contextlib.ExitStack() as stack:
        root = stack.enter_context(clinicnet_server(data_dir, args.workers, args.redis_url))
        servers = [Server("ClinicNet", root, {"Authorization": f"Bearer {token}"})]
        print(
            f"ClinicNet: manage.py serve --workers {args.workers} (uvicorn), DATABASE_POOL=true"
            + (", REDIS_URL" if args.redis_url else "")
        )
        if not args.skip_orthanc:
            orthanc_root = stack.enter_context(orthanc_server(work))
            print(f"Loaded into Orthanc (REST POST /instances): {load_orthanc(orthanc_root, small + ct):.0f} s")
            print("Orthanc: HttpThreadsCount 50, on all cores (bench/orthanc/dicomweb.json)")
            servers.append(Server("Orthanc", orthanc_root + "/dicom-web", {}))
        wait_for_quiet(args.quiet_load, args.quiet_wait)
        print(f"Timing starts: load average {load_average()}", flush=True)
        for label, path in qido:
            counts = [server.count(path) for server in servers]
            print(f"  results of {label}: " + ", ".join(f"{s.name} {c}" for s, c in zip(servers, counts, strict=True)))
        print(f"\nms, median / p95, {args.runs} requests per case and server, {len(small) + 1} studies:")
        rows = compare(servers, cases, args.runs)
        for label, fetch in (
            (f"WADO-RS all {len(slices)} frames one by one", all_frames),
            (f"WADO-RS all {len(slices)} frames, 4 connections", all_frames_parallel),
        ):
            throughput = []
            for server in servers:
                fetch(server)
                seconds = statistics.median(timed(lambda server=server, fetch=fetch: fetch(server), 3)) / 1000
                throughput.append(
                    f"{len(slices) / seconds:.0f} frames/s, {len(slices) * frame_bytes / seconds / 1e6:.0f} MB/s"
                )
            rows.append([label, *throughput])
        print_table(["case", *(s.name for s in servers)], rows)
        print(f"Timing ends: load average {load_average()}", flush=True)

        if args.skip_large:
            return
        print(f"\nAdding index rows up to {args.total_studies:,} studies / {args.total_instances:,} instances ...")
        print(f"  COPY took {bulk_rows(clinic.pk, args.total_studies, args.total_instances):.0f} s")  # type: ignore[attr-defined]
        from imaging.models import Study

        print(f"  archive: {Study.objects.count():,} studies, {Instance.objects.count():,} instances")
        wait_for_quiet(args.quiet_load, args.quiet_wait)
        print(f"Timing starts: load average {load_average()}", flush=True)
        clinicnet = servers[0]
        large = [
            (f"QIDO studies PatientName={NAME_QUERY} (all)", f"/studies?PatientName={NAME_QUERY}"),
            ("QIDO studies PatientName=PARK^SEO* (prefix), limit=100", "/studies?PatientName=PARK^SEO*&limit=100"),
            ("QIDO studies PatientName=박* (Hangul group), limit=25", "/studies?PatientName=%EB%B0%95*&limit=25"),
            ("QIDO studies StudyDate one year, limit=25", f"/studies?StudyDate={YEAR[0]}-{YEAR[1]}&limit=25"),
            ("QIDO studies ModalitiesInStudy=CT + one year, limit=25",
             f"/studies?ModalitiesInStudy=CT&StudyDate={YEAR[0]}-{YEAR[1]}&limit=25"),
            ("QIDO studies ModalitiesInStudy=CT + one month",
             "/studies?ModalitiesInStudy=CT&StudyDate=20230601-20230630"),
        ]  # fmt: skip
        for label, path in large:
            print(f"  results of {label}: {clinicnet.count(path)}")
        print(f"\nClinicNet at {args.total_studies:,} studies / {args.total_instances:,} instances, ms:")
        rows = []
        for label, path in large:
            clinicnet.get(path)
            times = timed(lambda path=path: clinicnet.get(path), args.runs * 2)
            sql = sql_times(clinicnet, path, args.runs // 2)
            rows.append([label, f"{p(times, 0.5):.1f}", f"{p(times, 0.95):.1f}", sql])
        times = timed(lambda: clinicnet.get(f"/studies/{study_uid}/metadata"), args.runs)
        sql = sql_times(clinicnet, f"/studies/{study_uid}/metadata", args.runs // 2)
        label = f"WADO-RS study /metadata ({len(ct)}-slice CT)"
        rows.append([label, f"{p(times, 0.5):.1f}", f"{p(times, 0.95):.1f}", sql])
        print_table(["case", "HTTP p50", "HTTP p95", "SQL p50 / p95 (slowest query)"], rows)
        print(f"Timing ends: load average {load_average()}", flush=True)


def sql_times(server: Server, path: str, runs: int) -> str:
    """p50 / p95 of the PostgreSQL execution time of the main query of *path* (EXPLAIN ANALYZE).

    The request runs once in this process to capture its SQL; the longest query
    is the search (or the metadata read). Shows what the database costs apart
    from HTTP, Python and the load on the machine.
    """
    from django.db import connection
    from django.test import Client

    captured: list[tuple[float, str, object]] = []

    def capture(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            captured.append((time.perf_counter() - started, sql, params))

    client = Client(headers={"authorization": server.session.headers["Authorization"]}, SERVER_NAME="127.0.0.1")
    with connection.execute_wrapper(capture):
        client.get("/dicomweb" + path)
    _seconds, sql, params = max((c for c in captured if c[1].lstrip().upper().startswith("SELECT")), key=lambda c: c[0])
    times = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            cursor.execute("EXPLAIN (ANALYZE, TIMING OFF) " + sql, params)
            line = next(row[0] for row in cursor.fetchall() if row[0].startswith("Execution Time"))
            times.append(float(line.split(":")[1].split()[0]))
    return f"{p(times, 0.5):.1f} / {p(times, 0.95):.1f}"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
