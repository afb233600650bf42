"""The co-reading websocket, /ws/coreading/<room>/ — one consumer per connection.

The hot path (viewport, pointer) touches no database: a viewport is one Lua
call to the shared store (number it, check the sender leads, remember its id,
log it) and one ``group_send`` of text encoded once; a pointer is one
``group_send``. Persisted kinds (annotations, chat) are written through
``database_sync_to_async`` and sent to the group after the write commits.

Access is checked at connect (``coreading.services.enter``), again when
``access.changed`` reaches the user's group, when the room is closed or the
user removed (group messages from ``coreading.services``), and every
``COREADING_RECHECK_SECONDS`` (grants that end by time send nothing).

A background task per connection beats every ``COREADING_HEARTBEAT_SECONDS``:
it refreshes this connection's presence, announces connections whose presence
expired (their process died), saves the leader's viewport now and then, and
notices when the store is gone (then the socket closes with 4503 and the
client reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext as _

from clinicnet.events import user_group
from coreading import protocol, services
from coreading.protocol import ProtocolError
from coreading.store import DUPLICATE, NOT_LEADER, OK, Store, StoreUnavailable, get_store, now_ms

logger = logging.getLogger(__name__)

# Kinds the shared store failing to answer cannot be dropped quietly for: the sender is told.
_STORE_ERRORS: tuple[type[BaseException], ...] = (StoreUnavailable, OSError)
try:
    from redis.exceptions import RedisError

    _STORE_ERRORS = (*_STORE_ERRORS, RedisError)
except ImportError:  # pragma: no cover - redis is a dependency
    pass


def in_thread(function: Any) -> Any:
    """*function* (synchronous, reaching the database) as a coroutine function run in a thread pool.

    Not on the process's one thread for synchronous code (``database_sync_to_async``'s
    default): Channels authenticates every new websocket there, before its handshake can
    complete. With joins, snapshots and the periodic access re-checks of thousands of
    connections on that same thread, new connections queued behind them until their
    handshakes timed out (bench/README.md).
    Each call is self-contained (its own transaction), so any thread will do. SQLite (the
    embedded mode, one process) keeps the one thread: it serialises writers anyway, and the
    test database's shared cache refuses concurrent ones ("database table is locked").
    """
    sqlite = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
    return database_sync_to_async(function, thread_sensitive=sqlite)


class Bucket:
    """A token bucket: *rate* a second, bursts up to *burst*."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RoomConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    entry: services.Entry | None = None
    # The client's socket is gone: group messages still queued for it are not sent.
    gone = False
    # This side closed the socket: nothing more is handled or sent.
    closing = False

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close once. Messages the client sent before the close still arrive, and their handling
        may want to close again (e.g. a "join" queued behind a refused connect); the ASGI server
        refuses a second close (uvicorn raises)."""
        if self.closing:
            return
        self.closing = True
        await super().close(code=code, reason=reason)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Call the handler of *message* — without Channels' thread hop before every message.

        Channels (4.2+) runs ``close_old_connections`` through ``sync_to_async`` before each
        handler: a hop to the process's one thread for synchronous code, for every viewport
        and pointer of every connection. Under load that thread becomes the queue all
        messages wait in (seconds behind joins and database work; bench/README.md). Every
        database call here goes through ``in_thread`` (``database_sync_to_async``), which closes old
        connections itself, so the hop buys nothing.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # The channel layer's receive loop raises when Redis goes away: close with 4503, do not crash.
        try:
            await super().__call__(scope, receive, send)
        except _STORE_ERRORS as error:
            logger.warning("coreading: shared store or channel layer unavailable: %s", error)
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": protocol.CLOSE_UNAVAILABLE})

    # --- Connect and disconnect --------------------------------------------------------------

    async def connect(self) -> None:
        self.conn = secrets.token_hex(6)
        self.store: Store = get_store()
        self.joined = False
        self.left = False
        self.groups_added: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.mode = "follow"
        self.joined_at = 0
        self.pointer_bucket = Bucket(settings.COREADING_POINTER_RATE, settings.COREADING_POINTER_RATE)
        self.message_bucket = Bucket(settings.COREADING_MESSAGE_RATE, settings.COREADING_MESSAGE_RATE * 2)
        self.dropped = 0
        self.dropped_unreported = 0
        self.last_rate_error = 0.0
        self.viewport: dict[str, Any] | None = None
        self.viewport_dirty = False
        self.viewport_saved = time.monotonic()
        # Accept first, then close with our code: a refused handshake reaches the browser as 1006.
        await self.accept()
        user = self.scope.get("user")
        room_id = self.scope["url_route"]["kwargs"]["room"]
        if user is None or not user.is_authenticated:
            await self.close(code=protocol.CLOSE_NOT_FOUND)
            return
        try:
            self.entry = await in_thread(services.enter)(user, room_id)
        except Http404:
            await self.close(code=protocol.CLOSE_NOT_FOUND)
            return
        except services.RoomClosed:
            await self.close(code=protocol.CLOSE_ROOM_CLOSED)
            return
        self.group = services.room_group(self.entry.room_id)
        try:
            for group in (self.group, user_group(self.entry.user_id)):
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_added.append(group)
        except _STORE_ERRORS:
            await self.close(code=protocol.CLOSE_UNAVAILABLE)
            return
        self.tasks.append(asyncio.create_task(self._join_timeout()))

    async def disconnect(self, code: int) -> None:
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(*_STORE_ERRORS):
            await self._leave("left")
        for group in self.groups_added:
            with contextlib.suppress(*_STORE_ERRORS):
                await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_added = []

    async def _close(self, code: int, reason: str) -> None:
        """Leave the room (announcing it), then close the socket with *code*."""
        with contextlib.suppress(*_STORE_ERRORS):
            await self._leave(reason)
        await self.close(code=code)

    async def _leave(self, reason: str) -> None:
        if not self.joined or self.left or self.entry is None:
            return
        self.left = True
        if self.viewport_dirty:
            await self._save_viewport()
        room = self.entry.room_id
        if await self.store.presence_remove(room, self.conn):
            await self._sequenced("presence.left", {"conn": self.conn, "reason": reason})
        changed, successor = await self.store.pass_lead(room, self.conn)
        if changed:
            await self._leader_changed(successor, self.conn, "left", sender=None)

    async def _join_timeout(self) -> None:
        await asyncio.sleep(settings.COREADING_JOIN_TIMEOUT)
        if not self.joined:
            await self.close(code=protocol.CLOSE_JOIN_TIMEOUT)

    # --- Receiving -------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.entry is None or self.left or self.closing:
            return
        with translation.override(self.entry.language):
            try:
                await self._receive(text_data)
            except ProtocolError as refused:
                await self._send_error(refused.code, refused.message, refused.message_id)
            except _STORE_ERRORS as error:
                logger.warning("coreading: shared store unavailable: %s", error)
                await self.close(code=protocol.CLOSE_UNAVAILABLE)

    async def _receive(self, text: str | None) -> None:
        # Pointers are cheap to recognise and the most frequent: their own limit, before parsing.
        is_pointer = text is not None and '"pointer"' in text[:64]
        if is_pointer and not self.pointer_bucket.take():
            await self._drop()
            return
        if not is_pointer and not self.message_bucket.take():
            await self._drop()
            return
        message = protocol.parse(text, max_bytes=settings.COREADING_MAX_MESSAGE_BYTES)
        if message.type == "pointer" and not is_pointer:
            # "pointer" further into the frame than we looked: count it against the pointer limit too.
            if not self.pointer_bucket.take():
                await self._drop()
                return
        if not self.joined and message.type not in protocol.BEFORE_JOIN:
            raise ProtocolError(protocol.NOT_JOINED, _("Send “join” first."), message.id)
        handler = getattr(self, "on_" + message.type.replace(".", "_"))
        await handler(message)

    async def _drop(self) -> None:
        self.dropped += 1
        self.dropped_unreported += 1
        now = time.monotonic()
        if now - self.last_rate_error >= 1.0:
            self.last_rate_error = now
            await self._send_error(
                protocol.RATE_LIMITED,
                _("Too many messages; some were dropped."),
                None,
                dropped=self.dropped,
            )

    async def _send_error(self, code: str, message: str, message_id: str | None, **extra: Any) -> None:
        await self.send(text_data=protocol.encode(protocol.error(code, message, message_id, **extra)))

    async def _send(self, kind: str, data: dict[str, Any], message_id: str | None = None) -> None:
        await self.send(text_data=protocol.encode(protocol.envelope(kind, data, message_id=message_id)))

    # --- Sending to the room ---------------------------------------------------------------------

    async def _seed(self) -> int:
        assert self.entry is not None
        return int(await in_thread(services.max_seq)(self.entry.room_pk))

    def _dedupe(self, message_id: str | None) -> str | None:
        return f"{self.entry.user_id}:{message_id}" if message_id and self.entry else None

    async def _sequenced(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        message_id: str | None = None,
        sender: str | None = "self",
        viewport: bool = False,
        leader: str | None = None,
    ) -> str | None:
        """Number, log and fan out a state change; None when sent (else DUPLICATE or NOT_LEADER)."""
        assert self.entry is not None
        conn = self.conn if sender == "self" else sender
        user = self.entry.user_id if conn == self.conn else None
        text = protocol.encode(protocol.envelope(kind, data, sender=conn, user=user, message_id=message_id))
        numbered = await self.store.sequence(
            self.entry.room_id,
            seed=self._seed,
            rest=text[1:],
            viewport=viewport,
            leader=leader,
            dedupe=self._dedupe(message_id),
        )
        if numbered.status == DUPLICATE:
            await self._send("ack", {"seq": numbered.seq, "duplicate": True}, message_id)
            return DUPLICATE
        if numbered.status == NOT_LEADER:
            return NOT_LEADER
        assert numbered.seq is not None
        await self.channel_layer.group_send(
            self.group, {"type": "coreading.message", "text": protocol.with_seq(text, numbered.seq)}
        )
        return None

    async def _persisted(self, kind: str, data: dict[str, Any], seq: int, message_id: str | None) -> None:
        """Fan out a change already stored with its number *seq*."""
        assert self.entry is not None
        body = protocol.envelope(kind, data, sender=self.conn, user=self.entry.user_id, message_id=message_id)
        text = protocol.with_seq(protocol.encode(body), seq)
        await self.store.log(self.entry.room_id, seq, text)
        await self.channel_layer.group_send(self.group, {"type": "coreading.message", "text": text})

    async def _allocate(self) -> int:
        assert self.entry is not None
        numbered = await self.store.sequence(self.entry.room_id, seed=self._seed)
        assert numbered.seq is not None
        return numbered.seq

    async def _leader_changed(self, leader: str | None, previous: str | None, reason: str, *, sender: Any) -> None:
        await self._sequenced(
            "leader.changed", {"leader": leader, "previous": previous, "reason": reason}, sender=sender
        )

    # --- Handlers, one per client type ---------------------------------------------------------------

    async def on_ping(self, message: protocol.ClientMessage) -> None:
        await self._send("pong", {}, message.id)

    def _presence_entry(self) -> dict[str, Any]:
        assert self.entry is not None
        return {
            "conn": self.conn,
            "user": self.entry.user_id,
            "name": self.entry.name,
            "institution": self.entry.institution,
            "role": self.entry.role,
            "colour": self.entry.colour,
            "mode": self.mode,
            "joined_at": self.joined_at,
            "seen": now_ms(),
        }

    @staticmethod
    def _participant(entry: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in entry.items() if key != "seen"}

    async def on_join(self, message: protocol.ClientMessage) -> None:
        assert self.entry is not None
        if self.joined:
            raise ProtocolError(protocol.BAD_MESSAGE, _("This connection has joined already."), message.id)
        self.mode = message.data["mode"]
        self.joined_at = now_ms()
        room = self.entry.room_id
        entry = self._presence_entry()
        await self.store.presence_set(room, self.conn, entry)
        self.joined = True
        leader, previous = await self.store.claim_lead(room, self.conn)
        await self._sequenced("presence.joined", self._participant(entry))
        if leader == self.conn and previous != self.conn:
            await self._leader_changed(self.conn, previous, "claimed" if previous else "first", sender=None)
        self.tasks.append(asyncio.create_task(self._heartbeat()))
        resume = message.data.get("resume")
        if resume is None or not await self._replay(resume["seq"], resume["epoch"]):
            await self._snapshot()

    async def on_sync(self, message: protocol.ClientMessage) -> None:
        state = await self.store.state(self.entry.room_id, seed=self._seed)  # type: ignore[union-attr]
        if not await self._replay(message.data["seq"], state.epoch):
            await self._snapshot()

    async def _replay(self, after: int, epoch: str) -> bool:
        assert self.entry is not None
        replay = await self.store.replay(self.entry.room_id, after, epoch)
        if replay.messages is None:
            return False
        for text in replay.messages:
            await self.send(text_data=text)
        await self._send("resumed", {"epoch": replay.epoch, "seq": replay.seq, "you": self._you()})
        return True

    def _you(self) -> dict[str, Any]:
        assert self.entry is not None
        return {"conn": self.conn, "user": self.entry.user_id, "colour": self.entry.colour, "mode": self.mode}

    async def _snapshot(self) -> None:
        assert self.entry is not None
        # The store first: what the database holds is at least as new as that number.
        state = await self.store.state(self.entry.room_id, seed=self._seed)
        persisted = await in_thread(services.snapshot)(self.entry.room_pk)
        now = now_ms()
        participants = [
            self._participant(entry)
            for entry in sorted(state.presence.values(), key=lambda e: (e.get("joined_at", 0), e.get("conn", "")))
            if int(entry.get("seen", 0)) > now - settings.COREADING_PRESENCE_TTL * 1000
        ]
        viewport = persisted["viewport"]
        if state.viewport_message is not None:
            viewport = json.loads(state.viewport_message)["data"]
        data = {
            "epoch": state.epoch,
            "seq": state.seq,
            "room": {
                "id": self.entry.room_id,
                "kind": self.entry.kind,
                "title": self.entry.title,
                "study": self.entry.study_uid,
                "consultation": self.entry.consultation,
            },
            "you": self._you(),
            "participants": participants,
            "leader": state.leader,
            "viewport": viewport,
            "annotations": persisted["annotations"],
            "chat": persisted["chat"],
            "limits": {
                "max_message_bytes": settings.COREADING_MAX_MESSAGE_BYTES,
                "pointer_per_second": settings.COREADING_POINTER_RATE,
                "messages_per_second": settings.COREADING_MESSAGE_RATE,
                "chat_history": settings.COREADING_CHAT_HISTORY,
            },
        }
        await self._send("snapshot", data)

    async def on_mode(self, message: protocol.ClientMessage) -> None:
        assert self.entry is not None
        self.mode = message.data["mode"]
        await self.store.presence_set(self.entry.room_id, self.conn, self._presence_entry())
        await self._sequenced("presence.updated", {"conn": self.conn, "mode": self.mode}, message_id=message.id)

    async def on_viewport(self, message: protocol.ClientMessage) -> None:
        result = await self._sequenced("viewport", message.data, message_id=message.id, viewport=True, leader=self.conn)
        if result == NOT_LEADER:
            raise ProtocolError(protocol.NOT_LEADER, _("Only the leader's view is shared; ask to lead."), message.id)
        if result is None:
            self.viewport = message.data
            self.viewport_dirty = True

    async def on_pointer(self, message: protocol.ClientMessage) -> None:
        assert self.entry is not None
        text = protocol.encode(protocol.envelope("pointer", message.data, sender=self.conn, user=self.entry.user_id))
        await self.channel_layer.group_send(self.group, {"type": "coreading.message", "text": text, "skip": self.conn})

    async def on_leader_request(self, message: protocol.ClientMessage) -> None:
        assert self.entry is not None
        leader, previous = await self.store.claim_lead(self.entry.room_id, self.conn)
        if leader == self.conn:
            if previous != self.conn:
                await self._leader_changed(self.conn, previous, "claimed", sender="self")
            return
        text = protocol.encode(
            protocol.envelope("leader.requested", {"conn": self.conn}, sender=self.conn, user=self.entry.user_id)
        )
        await self.channel_layer.group_send(self.group, {"type": "coreading.message", "text": text})

    async def on_leader_grant(self, message: protocol.ClientMessage) -> None:
        assert self.entry is not None
        to = message.data["to"]
        outcome = await self.store.grant_lead(self.entry.room_id, self.conn, to)
        if outcome == NOT_LEADER:
            raise ProtocolError(protocol.NOT_LEADER, _("Only the leader can hand the lead over."), message.id)
        if outcome != OK:
            raise ProtocolError(protocol.NOT_FOUND, _("That participant is not in the room."), message.id)
        if self.viewport_dirty:
            await self._save_viewport()
        await self._sequenced(
            "leader.changed", {"leader": to, "previous": self.conn, "reason": "granted"}, message_id=message.id
        )

    async def on_chat(self, message: protocol.ClientMessage) -> None:
        assert self.entry is not None and message.id is not None
        existing = await in_thread(services.chat_existing)(self.entry, message.id)
        if existing is not None:
            await self._send("ack", {"seq": existing.seq, "duplicate": True}, message.id)
            return
        seq = await self._allocate()
        stored = await in_thread(services.chat_add)(
            self.entry, client_id=message.id, text=message.data["text"], seq=seq
        )
        if stored is None:  # the same message raced in through another connection
            await self._send("ack", {"seq": None, "duplicate": True}, message.id)
            return
        await self._persisted("chat", stored, seq, message.id)

    async def on_annotation_create(self, message: protocol.ClientMessage) -> None:
        assert self.entry is not None and message.id is not None
        existing = await in_thread(services.annotation_existing)(self.entry, message.id)
        if existing is not None:
            await self._send("ack", {"seq": existing.seq, "duplicate": True}, message.id)
            return
        seq = await self._allocate()
        stored = await in_thread(services.annotation_create)(
            self.entry, client_id=message.id, data=message.data, seq=seq
        )
        if stored is None:
            await self._send("ack", {"seq": None, "duplicate": True}, message.id)
            return
        await self._persisted("annotation.created", stored, seq, message.id)

    async def on_annotation_update(self, message: protocol.ClientMessage) -> None:
        assert self.entry is not None
        data = message.data
        current = await in_thread(services.annotation_get)(self.entry, data["annotation"])
        if current is None:
            raise ProtocolError(protocol.NOT_FOUND, _("There is no such annotation in this room."), message.id)
        if current.version != data["version"]:
            # A resend of an update that was applied is a duplicate, not a conflict.
            if current.version == data["version"] + 1 and current.updated_by_id == self.entry.user_id:
                await self._send("ack", {"seq": current.seq, "duplicate": True}, message.id)
                return
            await self._conflict(current, message.id)
            return
        changes: dict[str, Any] = {}
        if "points" in data:
            changes["points"] = protocol.annotation_points(data["points"], current.kind, message.id)
        if "text" in data:
            changes["text"] = data["text"]
        seq = await self._allocate()
        outcome, annotation = await in_thread(services.annotation_update)(
            self.entry, annotation_id=data["annotation"], version=data["version"], changes=changes, seq=seq
        )
        if outcome == "not_found" or annotation is None:
            raise ProtocolError(protocol.NOT_FOUND, _("There is no such annotation in this room."), message.id)
        if outcome == "conflict":
            await self._send_error(
                protocol.CONFLICT, _("Someone changed this annotation first."), message.id, annotation=annotation
            )
            return
        await self._persisted("annotation.updated", annotation, seq, message.id)

    async def _conflict(self, current: Any, message_id: str | None) -> None:
        annotation = await in_thread(services.annotation_json)(current)
        await self._send_error(
            protocol.CONFLICT, _("Someone changed this annotation first."), message_id, annotation=annotation
        )

    async def on_annotation_delete(self, message: protocol.ClientMessage) -> None:
        assert self.entry is not None
        annotation_id = message.data["annotation"]
        current = await in_thread(services.annotation_get)(self.entry, annotation_id)
        if current is None:
            raise ProtocolError(protocol.NOT_FOUND, _("There is no such annotation in this room."), message.id)
        seq = await self._allocate()
        version = await in_thread(services.annotation_delete)(self.entry, annotation_id=annotation_id, seq=seq)
        if version is None:
            raise ProtocolError(protocol.NOT_FOUND, _("There is no such annotation in this room."), message.id)
        await self._persisted("annotation.deleted", {"annotation": annotation_id, "version": version}, seq, message.id)

    # --- Background: heartbeat, expiry, re-check ------------------------------------------------------

    async def _heartbeat(self) -> None:
        assert self.entry is not None
        room = self.entry.room_id
        last_check = time.monotonic()
        try:
            while not self.left:
                await asyncio.sleep(settings.COREADING_HEARTBEAT_SECONDS)
                if self.left:
                    return
                presence = await self.store.presence_touch(room, self.conn, self._presence_entry())
                await self._expire(presence)
                if self.dropped_unreported:
                    await self.store.add_stat("pointer_dropped", self.dropped_unreported)
                    self.dropped_unreported = 0
                since_saved = time.monotonic() - self.viewport_saved
                if self.viewport_dirty and since_saved >= settings.COREADING_VIEWPORT_SAVE_SECONDS:
                    await self._save_viewport()
                if time.monotonic() - last_check >= settings.COREADING_RECHECK_SECONDS:
                    last_check = time.monotonic()
                    await self._recheck()
        except _STORE_ERRORS as error:
            logger.warning("coreading: shared store unavailable: %s", error)
            self.left = True  # nothing to announce to: the store is gone
            await self.close(code=protocol.CLOSE_UNAVAILABLE)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("coreading: heartbeat failed")
            await self.close(code=protocol.CLOSE_UNAVAILABLE)

    async def _expire(self, presence: dict[str, dict[str, Any]]) -> None:
        """Announce connections whose heartbeats stopped (their process died); pass their lead on."""
        assert self.entry is not None
        cutoff = now_ms() - settings.COREADING_PRESENCE_TTL * 1000
        for conn, entry in presence.items():
            if conn == self.conn or int(entry.get("seen", 0)) > cutoff:
                continue
            if await self.store.presence_remove(self.entry.room_id, conn):
                await self._sequenced("presence.left", {"conn": conn, "reason": "timeout"}, sender=None)
                changed, successor = await self.store.pass_lead(self.entry.room_id, conn)
                if changed:
                    await self._leader_changed(successor, conn, "left", sender=None)

    async def _save_viewport(self) -> None:
        assert self.entry is not None
        if self.viewport is not None:
            await in_thread(services.save_viewport)(self.entry.room_pk, self.viewport)
        self.viewport_dirty = False
        self.viewport_saved = time.monotonic()

    async def _recheck(self) -> None:
        assert self.entry is not None
        allowed = await in_thread(services.still_allowed)(self.entry.user_id, self.entry.room_pk)
        if not allowed:
            await self._close(protocol.CLOSE_ACCESS_ENDED, "access")

    # --- Group messages ------------------------------------------------------------------------------

    async def coreading_message(self, message: dict[str, Any]) -> None:
        if message.get("skip") == self.conn or self.left or self.gone or self.closing:
            return
        try:
            await self.send(text_data=message["text"])
        except Exception:  # noqa: BLE001  (the ASGI server's "socket closed" error; its disconnect is on its way)
            # Fan-out still queued when the client went away: drop it; websocket.disconnect cleans up.
            self.gone = True

    async def coreading_closed(self, message: dict[str, Any]) -> None:
        await self._send("room.closed", {"reason": message.get("reason", "")})
        self.left = True  # the room is gone: nothing to announce
        await self.close(code=protocol.CLOSE_ROOM_CLOSED)

    async def coreading_removed(self, message: dict[str, Any]) -> None:
        if self.entry is not None and message.get("user") == self.entry.user_id:
            await self._close(protocol.CLOSE_ACCESS_ENDED, "access")

    async def access_changed(self, message: dict[str, Any]) -> None:
        if self.entry is not None:
            await self._recheck()

    async def event_push(self, message: dict[str, Any]) -> None:
        """Live events for the user's pages also reach this group; the room socket does not carry them."""
