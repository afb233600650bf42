from __future__ import annotations

import importlib
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from institutions.demo import DEMO_PASSWORD


class Command(BaseCommand):
    help = "Load demo institutions, accounts and data (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        accounts: list[tuple[str, str]] = []
        # Each app may ship a `demo` module with load(write); institutions first.
        for config in apps.get_app_configs():
            try:
                module = importlib.import_module(f"{config.name}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.demo":
                    raise
                continue
            with transaction.atomic():
                result = module.load(self.stdout.write)
            if result:
                accounts.extend(result)
        # Previews of the demo images render in background threads in the
        # embedded mode; finish them before the process exits.
        from clinicnet.tasks import wait_for_threads

        wait_for_threads()
        if accounts:
            self.stdout.write("")
            self.stdout.write(f"Demo accounts (password for all: {DEMO_PASSWORD}):")
            width = max(len(username) for username, _ in accounts)
            for username, description in accounts:
                self.stdout.write(f"  {username.ljust(width)}  {description}")
