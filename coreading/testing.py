"""A websocket participant for tests: connect as a user, send typed messages, wait for kinds."""

from __future__ import annotations

import itertools
import json
from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from institutions.models import User
from institutions.testing import client_for

_ids = itertools.count(1)


def in_order(messages: list[dict[str, Any]], after: int) -> list[dict[str, Any]]:
    """Sequenced messages as a client applies them (docs/coreading.md, "Ordering"): by seq, once, from *after*.

    Raises AssertionError on a hole, which a client would have to fill with "sync".
    """
    by_seq = {m["seq"]: m for m in messages if "seq" in m and m["seq"] > after}
    applied = []
    expected = after + 1
    for seq in sorted(by_seq):
        assert seq == expected, f"missing seq {expected}"
        applied.append(by_seq[seq])
        expected += 1
    return applied


async def session_cookie(user: User) -> bytes:
    client = await sync_to_async(client_for)(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


class Participant:
    """One connection to a room through ``clinicnet.asgi.application``."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.seen: list[dict[str, Any]] = []
        # The answer to join. Not necessarily seen[0]: the broadcast of our own presence.joined
        # may arrive first (the protocol has clients buffer sequenced messages until the snapshot).
        self.snapshot: dict[str, Any] = {}

    @classmethod
    async def connect(cls, user: User | None, room_id: str, *, cookie: bytes | None = None) -> Participant:
        from clinicnet.asgi import application

        headers = [(b"origin", b"http://localhost")]
        if user is not None or cookie is not None:
            headers.append((b"cookie", cookie or await session_cookie(user)))  # type: ignore[arg-type]
        communicator = WebsocketCommunicator(application, f"/ws/coreading/{room_id}/", headers=headers)
        connected, _code = await communicator.connect()
        assert connected
        return cls(communicator)

    async def send(self, kind: str, data: dict[str, Any] | None = None, *, id: str | None = "auto", v: int = 1) -> str:
        message_id = f"t{next(_ids)}" if id == "auto" else id
        body: dict[str, Any] = {"v": v, "type": kind, "data": data or {}}
        if message_id is not None:
            body["id"] = message_id
        await self.communicator.send_to(text_data=json.dumps(body))
        return message_id or ""

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        await self.communicator.send_to(text_data=text, bytes_data=data)

    async def receive(self, wait: float = 2) -> dict[str, Any]:
        message = json.loads(await self.communicator.receive_from(timeout=wait))
        self.seen.append(message)
        return message

    async def expect(self, kind: str, wait: float = 2, **match: Any) -> dict[str, Any]:
        """The next message of *kind* (whose data has *match*), skipping others."""
        while True:
            message = await self.receive(wait)
            if message["type"] == kind and all(message.get("data", {}).get(k) == v for k, v in match.items()):
                return message

    async def join(self, **data: Any) -> dict[str, Any]:
        await self.send("join", data, id=None)
        self.snapshot = await self.expect("snapshot")
        return self.snapshot

    async def drain(self, quiet: float = 0.2) -> list[dict[str, Any]]:
        messages = []
        while not await self.communicator.receive_nothing(timeout=quiet):
            output = await self.communicator.receive_output(timeout=1)
            if output["type"] == "websocket.close":
                messages.append({"type": "websocket.close", "code": output.get("code")})
                break
            messages.append(json.loads(output["text"]))
        self.seen.extend(messages)
        return messages

    async def closed_with(self, wait: float = 3) -> int | None:
        """Wait for the server to close the socket; its close code."""
        while True:
            output = await self.communicator.receive_output(timeout=wait)
            if output["type"] == "websocket.close":
                return output.get("code")

    async def disconnect(self) -> None:
        await self.communicator.disconnect()
