"""The Redis store waits for a free connection instead of failing when a process is busy."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from django.conf import settings

from coreading import store

pytestmark = pytest.mark.skipif(not settings.COREADING_REDIS_URL, reason="needs Redis (COREADING_REDIS_URL)")


async def test_more_commands_at_once_than_connections_all_succeed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "POOL_SIZE", 2)
    redis_store = store.RedisStore(settings.COREADING_REDIS_URL)
    room = f"test-{uuid.uuid4()}"
    entries = [{"conn": f"c{number}", "seen": store.now_ms(), "joined_at": number} for number in range(40)]
    try:
        await asyncio.gather(*(redis_store.presence_touch(room, entry["conn"], entry) for entry in entries))
        assert len(await redis_store.presence(room)) == 40
    finally:
        client = redis_store._client()
        await client.delete(redis_store._key(room, "presence"))
        await client.aclose()
