"""/healthz: is this process able to serve? Used by docker-compose and load balancers."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_storage() -> None:
    name = default_storage.save(f"healthz/{uuid.uuid4().hex}", ContentFile(b"ok"))
    try:
        with default_storage.open(name) as handle:
            if handle.read() != b"ok":
                raise RuntimeError("storage returned other bytes than written")
    finally:
        default_storage.delete(name)


async def _round_trip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel("healthz.")
    await layer.send(channel, {"type": "healthz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("channel layer returned another message")
    # The pub/sub layer (the default) keeps a channel subscribed until a receive on it is
    # cancelled (it has no "delete channel"): without this, every health check would leave one
    # Redis subscription behind in the web process.
    pending = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pending


def _check_channel_layer() -> None:
    async_to_sync(_round_trip)()


CHECKS = {"database": _check_database, "storage": _check_storage, "channel_layer": _check_channel_layer}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    results: dict[str, dict[str, object]] = {}
    healthy = True
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as error:  # noqa: BLE001  (any failure means unhealthy, and we say which)
            healthy = False
            results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        else:
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results}, status=200 if healthy else 503
    )
