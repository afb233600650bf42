"""The Redis pub/sub channel layer, with publishes that do not wait for each other.

channels-redis 4.3's ``RedisPubSubChannelLayer`` sends every ``send`` and
``group_send`` of a process through one ``asyncio.Lock`` per Redis host, so
each publish waits for the round trip of every publish queued before it. Under
the co-reading load (bench/coreading_load.py: 50 rooms × 5, 1,500 messages a
second into two processes) a ``group_send`` then took ~20 ms to return, and a
leader's viewport waited behind its own pointer's: viewport fan-out p50 38 ms
against 13 ms for pointers.

The lock guards subscribing and flushing, which change the shard's state; a
publish changes nothing. Its Redis client draws connections from a pool, so
publishes here go out concurrently, each on a connection of its own. Ordering
is unchanged where it matters: one consumer awaits each ``group_send`` before
its next message, and co-reading numbers its messages itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close


class _Shard(RedisSingleShardConnection):
    async def publish(self, channel: str, message: bytes) -> None:
        self._ensure_redis()  # synchronous: no other task runs between the check and the use
        await self._redis.publish(channel, message)


class _LoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [_Shard(shard.host, self) for shard in self._shards]  # type: ignore[has-type]  # untyped


class PubSubChannelLayer(RedisPubSubChannelLayer):
    """``RedisPubSubChannelLayer`` with concurrent publishes (see the module docstring)."""

    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer
