# ruff: noqa: S603, S607, S310  (starts local processes and calls its own servers over http://127.0.0.1)
"""A local production-shaped cluster for the integration test and the load benchmark.

A private ``redis-server`` on a free port (never the machine's shared Redis on
6379), a fresh data folder with its own SQLite database — or, given
``database_url``, a dedicated PostgreSQL database created for the cluster and
dropped afterwards — and N web processes (`manage.py serve`) serving
``clinicnet.asgi:application`` with the Redis channel layer and the Redis
co-reading store. ``seed`` runs inside that environment (through ``manage.py
shell``) to create people, a real CT study and rooms.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PASSWORD = "coreading-cluster-pw"  # noqa: S105  (throw-away accounts in a throw-away database)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


@dataclass
class Cluster:
    folder: Path
    redis_port: int
    env: dict[str, str]
    redis: subprocess.Popen[bytes] | None = None
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    # --- Redis -------------------------------------------------------------------------------

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / "redis.log"),
            ]
        )
        wait_for_port(self.redis_port)

    def stop_redis(self) -> None:
        """Kill Redis at once (SIGKILL): what a crash looks like to the servers."""
        if self.redis is not None:
            self.redis.kill()
            self.redis.wait(10)
            self.redis = None

    # --- Django --------------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def seed(self, rooms: int, per_room: int, sessions: bool = False) -> dict[str, Any]:
        code = f"from coreading.cluster import seed; seed({rooms}, {per_room}, {sessions})"
        output = self.manage("shell", "-c", code)
        return dict(json.loads(output.strip().splitlines()[-1]))

    def start_servers(self, count: int) -> None:
        for number in range(count):
            port = free_port()
            log = open(self.folder / f"web-{number}.log", "wb")
            server = subprocess.Popen(
                [PYTHON, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            self.servers.append(server)
            self.ports.append(port)
        for port in self.ports:
            wait_for_port(port, timeout=60)

    def stop(self) -> None:
        for server in self.servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
        for server in self.servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        self.stop_redis()

    def server_log(self, number: int) -> str:
        return (self.folder / f"web-{number}.log").read_text(errors="replace")


def _postgres(database_url: str, *, create: bool) -> None:
    """(Re)create or drop the PostgreSQL database named in *database_url* (the cluster's own)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name.startswith("clinicnet_"):
        raise ValueError(f"refusing to drop and create {name!r}: the cluster's database name starts with clinicnet_")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if create:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@contextlib.contextmanager
def cluster(folder: Path, servers: int = 2, *, database_url: str | None = None, **settings: str) -> Iterator[Cluster]:
    """Redis, a migrated database and *servers* web processes; everything stopped afterwards.

    Without *database_url* the database is SQLite in *folder*; with one (PostgreSQL, a name
    starting with ``clinicnet_``) that database is created empty and dropped at the end.
    """
    folder.mkdir(parents=True, exist_ok=True)
    redis_port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    if database_url:
        _postgres(database_url, create=True)
        env["DATABASE_URL"] = database_url
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "clinicnet.settings",
            "CLINICNET_DATA_DIR": str(folder / "data"),
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "TASK_MODE": "eager",
            "SECRET_KEY": "coreading-cluster-secret-key-not-for-production-use-000000",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
    )
    env.pop("COREADING_REDIS_URL", None)
    result = Cluster(folder=folder, redis_port=redis_port, env=env)
    try:
        result.start_redis()
        result.manage("migrate", "--noinput", "-v0")
        if servers:
            result.start_servers(servers)
        yield result
    finally:
        result.stop()
        if database_url:
            _postgres(database_url, create=False)


def login(port: int, username: str, password: str = PASSWORD) -> str:
    """Sign in over HTTP like a browser (CSRF cookie, form post); the session cookie header."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"
    opener.open(f"{base}/accounts/login/", timeout=10).read()
    token = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    body = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token}).encode()
    page = f"{base}/accounts/login/"
    request = urllib.request.Request(page, data=body, headers={"Referer": page})
    opener.open(request, timeout=10).read()
    cookies = {cookie.name: cookie.value for cookie in jar}
    if "sessionid" not in cookies:
        raise RuntimeError(f"could not sign in as {username}")
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


# --- Inside the cluster's environment (manage.py shell -c) ------------------------------------


def seed(rooms: int, per_room: int, sessions: bool = False) -> None:
    """People at one clinic, a real CT study, *rooms* ad-hoc rooms of *per_room* people; prints JSON."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore

    from coreading import services
    from coreading.models import PALETTE, Participant
    from imaging.testing import make_study
    from institutions.models import Institution, Membership, Role, User
    from institutions.testing import make_institution

    center = make_institution(kind=Institution.Kind.HEALTH_CENTER, name_ko="부하시험보건소")
    clinic = make_institution(health_center=center, name_ko="부하시험의원")
    password = make_password(PASSWORD)  # hashed once: hundreds of people share it
    users = User.objects.bulk_create(
        [
            User(username=f"p{number}", name=f"참가자{number}", email=f"p{number}@example.org", password=password)
            for number in range(rooms * per_room)
        ]
    )
    Membership.objects.bulk_create([Membership(user=user, institution=clinic, role=Role.PHYSICIAN) for user in users])
    study = make_study(clinic, "CT_small.dcm", actor=users[0])
    result: dict[str, Any] = {"study": study.study_instance_uid, "rooms": []}
    for number in range(rooms):
        people = users[number * per_room : (number + 1) * per_room]
        room = services.room_create(actor=people[0], study=study, title=f"room {number}")
        # Invited as participant_invite would (without a notification each: thousands for the idle run).
        Participant.objects.bulk_create(
            [
                Participant(room=room, user=person, colour=PALETTE[index % len(PALETTE)], invited_by=people[0])
                for index, person in enumerate(people[1:], start=1)
            ]
        )
        entry: dict[str, Any] = {"id": str(room.uuid), "users": [person.username for person in people]}
        if sessions:
            keys = []
            for person in people:
                store = SessionStore()
                store[SESSION_KEY] = str(person.pk)
                store[BACKEND_SESSION_KEY] = "institutions.backends.EmailOrUsernameBackend"
                store[HASH_SESSION_KEY] = person.get_session_auth_hash()
                store.set_expiry(24 * 3600)
                store.create()
                keys.append(f"sessionid={store.session_key}")
            entry["cookies"] = keys
        result["rooms"].append(entry)
    print(json.dumps(result))


def redis_server_available() -> bool:
    return shutil.which("redis-server") is not None
