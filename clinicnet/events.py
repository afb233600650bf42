"""Live events to browsers: one websocket per open page, at /ws/events/.

Server code never talks to sockets directly. It calls ``push_to_users`` or
``push_to_institutions`` (after the transaction commits), which send to the
channel-layer groups every connected page of those users joined. With the
Redis layer this reaches pages served by any ASGI process.

Event shape, as the browser receives it: ``{"type": "<kind>", ...}``; kinds are
documented beside the code that sends them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import transaction

# Close code sent when access ends; the browser does not reconnect on it.
CLOSE_ACCESS_ENDED = 4403


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def institution_group(institution_id: int) -> str:
    return f"institution.{institution_id}"


def _send(groups: Iterable[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        async_to_sync(layer.group_send)(group, message)


def push_now(groups: Iterable[str], event: dict[str, Any]) -> None:
    _send(list(groups), {"type": "event.push", "event": event})


def push_to_users(user_ids: Iterable[int], event: dict[str, Any]) -> None:
    """Deliver *event* to every open page of these users once the transaction commits."""
    groups = [user_group(user_id) for user_id in user_ids]
    transaction.on_commit(lambda: push_now(groups, event))


def push_to_institutions(institution_ids: Iterable[int], event: dict[str, Any]) -> None:
    """Deliver *event* to every member's open page, once the transaction commits."""
    groups = [institution_group(institution_id) for institution_id in institution_ids]
    transaction.on_commit(lambda: push_now(groups, event))


def access_changed(user_ids: Iterable[int]) -> None:
    """Make these users' sockets re-check access now (they close if it is gone)."""
    _send([user_group(user_id) for user_id in user_ids], {"type": "access.changed"})


@database_sync_to_async
def _institution_ids(user: Any) -> list[int] | None:
    from institutions import permissions

    user.refresh_from_db(fields=["is_active", "is_staff"])
    if not permissions.has_any_access(user):
        return None
    return list(permissions.active_memberships(user).values_list("institution_id", flat=True).distinct())


class EventsConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_ACCESS_ENDED)
            return
        institution_ids = await _institution_ids(user)
        if institution_ids is None:
            await self.close(code=CLOSE_ACCESS_ENDED)
            return
        await self.accept()
        await self._join([user_group(user.pk)] + [institution_group(i) for i in institution_ids])
        await self.send_json({"type": "hello", "user": user.pk})

    async def _join(self, groups: list[str]) -> None:
        for group in groups:
            if group not in self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.append(group)
        for group in list(self.groups_joined):
            if group not in groups:
                await self.channel_layer.group_discard(group, self.channel_name)
                self.groups_joined.remove(group)

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The events socket is one-way; a ping keeps proxies from timing it out.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def access_changed(self, message: dict[str, Any]) -> None:
        user = self.scope["user"]
        institution_ids = await _institution_ids(user)
        if institution_ids is None:
            await self.close(code=CLOSE_ACCESS_ENDED)
            return
        await self._join([user_group(user.pk)] + [institution_group(i) for i in institution_ids])
        await self.send_json({"type": "access.changed"})

    async def event_push(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])
