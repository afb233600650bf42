"""clinicnet.channel_layer: Redis pub/sub with publishes that do not queue behind each other."""

from __future__ import annotations

import asyncio
import os

import pytest

from clinicnet.channel_layer import PubSubChannelLayer

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def _redis_available() -> bool:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _redis_available(), reason=f"needs Redis at {REDIS_URL}")


async def test_group_messages_arrive_and_a_publish_does_not_wait_for_the_shard_lock() -> None:
    layer = PubSubChannelLayer(hosts=[REDIS_URL], prefix=f"clinicnet-test-{os.getpid()}")
    try:
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        shard = layer._get_layer()._shards[0]
        # channels-redis's own shard takes this lock for every publish: held by a subscribe
        # (or another publish) in flight, group_send would wait here until the timeout.
        async with shard._lock:
            await asyncio.wait_for(layer.group_send("room", {"type": "room.message", "text": "한글 ok"}), 2)
        message = await asyncio.wait_for(layer.receive(channel), 2)
        assert message == {"type": "room.message", "text": "한글 ok"}
    finally:
        await layer.flush()
