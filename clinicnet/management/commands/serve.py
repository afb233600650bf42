"""Serve ClinicNet (HTTP and websockets) with uvicorn: the one way to start a web process.

`make run`, the Dockerfile, docker-compose, the browser tests and the
benchmarks all start the server through this command, so they run the same
ASGI server with the same options.

Why uvicorn: it applies flow control to request bodies, so Django spools a
1 GB upload to disk while it arrives; daphne (Twisted) queued and parsed the
whole body in memory (see bench/README.md, upload memory).
"""

from __future__ import annotations

from typing import Any

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from clinicnet.lib.env import envint, envstr
from clinicnet.tasks import wait_for_threads


class Command(BaseCommand):
    help = "Serve ClinicNet over HTTP and websockets (uvicorn)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=envstr("WEB_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=envint("WEB_PORT", 8000))
        parser.add_argument(
            "--workers", type=int, default=envint("WEB_WORKERS", 1), help="worker processes (needs REDIS_URL when > 1)"
        )
        parser.add_argument("--log-level", default=envstr("WEB_LOG_LEVEL", "info"))

    def handle(self, *args: Any, **options: Any) -> None:
        workers = max(1, options["workers"])
        if workers > 1 and not settings.REDIS_URL:
            # The in-process channel layer cannot connect websockets served by
            # different processes; say so instead of serving half-working rooms.
            self.stderr.write("--workers > 1 needs REDIS_URL (the channel layer must be shared); using 1")
            workers = 1
        uvicorn.run(
            "clinicnet.asgi:application",
            host=options["host"],
            port=options["port"],
            workers=workers,
            # Django has no lifespan handlers.
            lifespan="off",
            ws="websockets-sansio",
            # Co-reading messages are small; this caps a misbehaving client.
            ws_max_size=1024 * 1024,
            # Co-reading's messages are a few hundred bytes, sent thousands of times a second to
            # every participant: compressing each one for each socket cost more CPU than it saves.
            ws_per_message_deflate=False,
            # Behind nginx the client address comes from X-Forwarded-For, only when trusted.
            proxy_headers=settings.TRUST_X_FORWARDED_FOR,
            forwarded_allow_ips=envstr("FORWARDED_ALLOW_IPS", "127.0.0.1"),
            log_level=options["log_level"],
            timeout_keep_alive=30,
        )
        # In the embedded mode previews render in this process's threads: finish
        # those under way, instead of having them cut off as the interpreter exits.
        wait_for_threads()
