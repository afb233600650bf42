"""``manage.py dicom_scp``: run the DICOM Storage SCP (C-STORE, C-ECHO) until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from clinicnet.lib.startup import freeze_start_up_objects
from imaging.dimse import start_scp, stop_scp
from imaging.ingest import recover_acknowledged

logger = logging.getLogger(__name__)

# docker-compose gives the service 30 s (stop_grace_period) before it kills it.
STOP_WAIT_SECONDS = 25
# How often stale IngestJournal rows (a process that died after answering) are looked for.
RECOVER_EVERY_SECONDS = 60


class Command(BaseCommand):
    help = (
        "Run the DICOM Storage SCP: modalities push with C-STORE from an AE title registered for their "
        "institution. Defaults from DICOM_SCP_AE_TITLE, DICOM_SCP_PORT and DICOM_SCP_BIND."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=None, help=f"TCP port (default {settings.DICOM_SCP_PORT})")
        parser.add_argument("--bind", default=None, help=f"address to listen on (default {settings.DICOM_SCP_BIND})")
        parser.add_argument("--ae-title", default=None, help=f"our AE title (default {settings.DICOM_SCP_AE_TITLE})")

    def handle(self, *args: Any, **options: Any) -> None:
        freeze_start_up_objects()
        server = start_scp(bind=options["bind"], port=options["port"], ae_title=options["ae_title"])
        host, port = server.server_address[:2]
        self.stdout.write(f"DICOM Storage SCP {server.ae_title} listening on {host}:{port} (stop with Ctrl-C)")
        self.stdout.flush()
        stop = threading.Event()
        # docker stop sends SIGTERM: finish like Ctrl-C, so open associations end cleanly.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            # Instances an earlier run acknowledged and did not live to index (imaging.ingest).
            self.recover()
            while not stop.wait(RECOVER_EVERY_SECONDS):
                self.recover()
        except KeyboardInterrupt:
            pass
        self.stdout.write("stopping: no new associations; waiting for open ones to finish")
        still_open = stop_scp(server, STOP_WAIT_SECONDS)
        if still_open:
            self.stderr.write(f"{still_open} associations still open after {STOP_WAIT_SECONDS} s; stopping anyway")

    def recover(self) -> None:
        try:
            recovered = recover_acknowledged()
        except Exception:
            logger.exception("DIMSE: indexing acknowledged instances of an earlier run failed; trying again later")
            return
        finally:
            connections.close_all()
        if recovered:
            self.stdout.write(f"indexed {len(recovered)} instances acknowledged before an interruption")
            self.stdout.flush()
