"""The production shape: two web processes (manage.py serve) on a real (private) Redis, one room.

Two people signed in over HTTP, each connected to a different ASGI process,
exchange viewport, pointer, annotation and chat. Then Redis dies: both see
their socket close with 4503 ("reconnecting") — with the list-based channel
layer at once (its receive loop fails), with the pub/sub layer at the next
heartbeat (its receive loop reconnects quietly, the co-reading store does
not answer) — both servers keep running, and when Redis is back the room
recovers from what the database kept (annotations, chat, the leader's last
viewport) under a new epoch. Runs with both channel layers (CHANNEL_LAYER).

Needs only the ``redis-server`` binary (CI has it); it starts its own on a free
port and never touches the machine's shared Redis.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from coreading import protocol
from coreading.cluster import Cluster, cluster, login, redis_server_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not redis_server_available(), reason="needs the redis-server binary"),
]

SERIES = "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
INSTANCE = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"


class Client:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.count = 0

    @classmethod
    async def open(cls, port: int, room: str, cookie: str) -> Client:
        socket = await connect(
            f"ws://127.0.0.1:{port}/ws/coreading/{room}/",
            additional_headers={"Cookie": cookie},
            origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
            open_timeout=10,
        )
        return cls(socket)

    async def send(self, kind: str, data: dict[str, Any] | None = None, with_id: bool = True) -> None:
        self.count += 1
        body: dict[str, Any] = {"v": 1, "type": kind, "data": data or {}}
        if with_id:
            body["id"] = f"m{self.count}-{id(self)}"
        await self.socket.send(json.dumps(body))

    async def expect(self, kind: str, wait: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(wait):
            while True:
                message = json.loads(await self.socket.recv())
                if message["type"] == kind:
                    return dict(message)

    async def closed_with(self, wait: float = 20) -> int | None:
        async with asyncio.timeout(wait):
            try:
                while True:
                    await self.socket.recv()
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None


async def reconnect(port: int, room: str, cookie: str, resume: dict[str, Any]) -> tuple[Client, dict[str, Any]]:
    """Reconnect with backoff as a browser would, until the room answers with a snapshot."""
    delay = 0.2
    for _attempt in range(40):
        client = None
        try:
            client = await Client.open(port, room, cookie)
            await client.send("join", {"resume": resume}, with_id=False)
            return client, (await client.expect("snapshot", wait=5))["data"]
        except (OSError, ConnectionClosed, TimeoutError):
            if client is not None:  # a browser drops the attempt it gave up on (it may have joined)
                await client.socket.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("the room did not come back")


async def exchange(first: Client, second: Client, image: int, label: str) -> None:
    """Viewport, pointer, annotation and chat, each seen on the other process."""
    cells = [{"series": SERIES, "image": image, "window": {"center": 40, "width": 400}, "zoom": 1.5}]
    await first.send("viewport", {"layout": "1x1", "cells": cells})
    assert (await second.expect("viewport"))["data"]["cells"][0]["image"] == image
    await second.send("pointer", {"series": SERIES, "image": image, "x": 100.5, "y": 64}, with_id=False)
    assert (await first.expect("pointer"))["data"]["x"] == 100.5
    points = [[10, 10], [40, 50]]
    await second.send("annotation.create", {"kind": "arrow", "series": SERIES, "instance": INSTANCE, "points": points})
    assert (await first.expect("annotation.created"))["data"]["points"] == [[10.0, 10.0], [40.0, 50.0]]
    await first.send("chat", {"text": label})
    assert (await second.expect("chat"))["data"]["text"] == label


HEARTBEAT = 0.5


@pytest.mark.parametrize("layer", ["redis-pubsub", "redis"])
def test_two_processes_share_a_room_and_it_survives_redis_going_away(tmp_path: Path, layer: str) -> None:
    settings = {
        "CHANNEL_LAYER": layer,
        "COREADING_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "COREADING_PRESENCE_TTL": "3",
        "COREADING_VIEWPORT_SAVE_SECONDS": "0",
    }
    with cluster(tmp_path / "cluster", servers=2, **settings) as local:
        data = local.seed(rooms=1, per_room=2)
        asyncio.run(_scenario(local, data, layer))


def unexpected_tracebacks(log: str) -> list[str]:
    """Tracebacks in a server log other than the pub/sub layer reporting its lost Redis connection."""
    lines = log.splitlines()
    found = []
    for index, line in enumerate(lines):
        if not line.startswith("Traceback"):
            continue
        logged = next((lines[i] for i in range(index - 1, -1, -1) if re.match(r"^\d{4}-\d\d-\d\d ", lines[i])), "")
        if " ERROR channels_redis.pubsub: " not in logged:
            found.append(logged or line)
    return found


async def _scenario(local: Cluster, data: dict[str, Any], layer: str) -> None:
    room = data["rooms"][0]["id"]
    first_port, second_port = local.ports
    first_user, second_user = data["rooms"][0]["users"]
    first_cookie = login(first_port, first_user)
    second_cookie = login(second_port, second_user)

    first = await Client.open(first_port, room, first_cookie)
    await first.send("join", with_id=False)
    before = (await first.expect("snapshot"))["data"]
    second = await Client.open(second_port, room, second_cookie)
    await second.send("join", with_id=False)
    snapshot = (await second.expect("snapshot"))["data"]
    assert [p["user"] for p in snapshot["participants"]] == [before["you"]["user"], snapshot["you"]["user"]]
    assert snapshot["leader"] == before["you"]["conn"]  # presence and leadership across processes
    await exchange(first, second, 17, "두 프로세스 사이의 대화")
    await asyncio.sleep(1.2)  # a heartbeat saves the leader's viewport

    local.stop_redis()
    stopped = time.monotonic()
    codes = await asyncio.gather(first.closed_with(), second.closed_with())
    waited = time.monotonic() - stopped
    assert codes == [protocol.CLOSE_UNAVAILABLE, protocol.CLOSE_UNAVAILABLE]
    # The list layer's receive loop fails at once; pub/sub's does not, the next heartbeat notices.
    assert waited < (1.0 if layer == "redis" else HEARTBEAT + 2.0), waited
    assert all(server.poll() is None for server in local.servers), "a server crashed"

    local.start_redis()
    resume = {"epoch": snapshot["epoch"], "seq": snapshot["seq"]}
    first, recovered = await reconnect(first_port, room, first_cookie, resume)
    second, recovered_second = await reconnect(second_port, room, second_cookie, resume)
    assert recovered["epoch"] != snapshot["epoch"]  # numbers from before are not trusted
    assert recovered["seq"] >= snapshot["seq"]  # seeded from what the database kept
    assert [a["kind"] for a in recovered_second["annotations"]] == ["arrow"]
    assert [c["text"] for c in recovered_second["chat"]] == ["두 프로세스 사이의 대화"]
    assert recovered_second["viewport"]["cells"][0]["image"] == 17
    if recovered_second["leader"] != recovered["you"]["conn"]:
        # A reconnect attempt the first browser gave up on (no snapshot within 5 s while the
        # servers found Redis again) may have joined and led for a moment; its leave hands the
        # lead to the longest-present connection, the first browser's current one.
        while (await second.expect("leader.changed"))["data"]["leader"] != recovered["you"]["conn"]:
            pass
    await exchange(first, second, 18, "다시 연결됨")
    await first.socket.close()
    await second.socket.close()
    for number in range(2):
        assert unexpected_tracebacks(local.server_log(number)) == [], local.server_log(number)
