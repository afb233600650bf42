"""In a room: one order for everyone, idempotent resends, throttled pointers, snapshots and catch-up,
leadership, annotations and chat — and every bad message answered to its sender alone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from coreading import consumers, protocol
from coreading.models import Annotation, ChatMessage, Room
from coreading.testing import Participant, in_order
from institutions.models import User

pytestmark = pytest.mark.django_db(transaction=True)

SERIES = "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
INSTANCE = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"


def viewport(image: int) -> dict[str, Any]:
    return {"layout": "1x1", "cells": [{"series": SERIES, "image": image, "window": {"center": 40, "width": 400}}]}


def length(x: float = 10) -> dict[str, Any]:
    return {"kind": "length", "series": SERIES, "instance": INSTANCE, "points": [[x, 10], [x + 20, 30]], "text": "8 mm"}


async def two_in(room: Room, first: User, second: User) -> tuple[Participant, Participant]:
    leader = await Participant.connect(first, str(room.uuid))
    await leader.join()
    follower = await Participant.connect(second, str(room.uuid))
    await follower.join()
    await leader.drain()
    await follower.drain()
    return leader, follower


def sequenced(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if "seq" in m]


async def test_everyone_receives_the_changes_in_one_order(adhoc_room: Room, doctor: User, clerk: User) -> None:
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    for image in range(5):
        await leader.send("viewport", viewport(image))
        await follower.send("chat", {"text": f"{image}번 영상"})
    start = follower.snapshot["data"]["seq"]
    # Persisted kinds are numbered before their write, so delivery may swap neighbours;
    # applied by seq, as the protocol asks, both see the same ten changes in the same order.
    leader_seen = in_order(await leader.drain(quiet=0.5), start)
    follower_seen = in_order(await follower.drain(quiet=0.5), start)
    assert len(leader_seen) == 10
    assert leader_seen == follower_seen
    assert [m["data"]["cells"][0]["image"] for m in follower_seen if m["type"] == "viewport"] == [0, 1, 2, 3, 4]
    await leader.disconnect()
    await follower.disconnect()


async def test_a_resent_viewport_is_applied_once_and_acknowledged(adhoc_room: Room, doctor: User, clerk: User) -> None:
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    message_id = await leader.send("viewport", viewport(7))
    first = await leader.expect("viewport")
    await leader.send("viewport", viewport(7), id=message_id)
    ack = await leader.expect("ack")
    assert ack["id"] == message_id
    assert ack["data"] == {"seq": first["seq"], "duplicate": True}
    assert [m["type"] for m in await follower.drain()] == ["viewport"]
    await leader.disconnect()
    await follower.disconnect()


async def test_a_resent_chat_or_annotation_from_a_new_connection_is_stored_once(
    adhoc_room: Room, doctor: User, clerk: User
) -> None:
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    await follower.send("chat", {"text": "결절 보이세요?"}, id="page1-1")
    chat = await follower.expect("chat")
    await follower.send("annotation.create", length(), id="page1-2")
    created = await follower.expect("annotation.created")
    await follower.disconnect()
    await leader.drain()
    # The page reconnects and resends both: nothing new is stored or broadcast.
    again = await Participant.connect(clerk, str(adhoc_room.uuid))
    await again.join()
    await again.send("chat", {"text": "결절 보이세요?"}, id="page1-1")
    assert (await again.expect("ack"))["data"] == {"seq": chat["seq"], "duplicate": True}
    await again.send("annotation.create", length(), id="page1-2")
    assert (await again.expect("ack"))["data"] == {"seq": created["seq"], "duplicate": True}
    assert await ChatMessage.objects.filter(room=adhoc_room).acount() == 1
    assert await Annotation.objects.filter(room=adhoc_room).acount() == 1
    assert not [m for m in await leader.drain() if m["type"] in ("chat", "annotation.created")]
    await leader.disconnect()
    await again.disconnect()


async def test_pointers_over_the_rate_are_dropped_counted_and_the_sender_told(
    settings: Any, adhoc_room: Room, doctor: User, clerk: User
) -> None:
    settings.COREADING_POINTER_RATE = 5
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    for step in range(20):
        await leader.send("pointer", {"series": SERIES, "image": 0, "x": step, "y": step}, id=None)
    mine = await leader.drain(quiet=0.3)
    errors = [m for m in mine if m["type"] == "error"]
    assert len(errors) == 1  # at most one a second
    assert errors[0]["data"]["code"] == protocol.RATE_LIMITED
    assert errors[0]["data"]["dropped"] == 1
    assert not [m for m in mine if m["type"] == "pointer"]  # never echoed to the sender
    pointers = [m for m in await follower.drain(quiet=0.3) if m["type"] == "pointer"]
    assert len(pointers) == 5  # the burst; the rest dropped, not queued
    assert [p["data"]["x"] for p in pointers] == [0, 1, 2, 3, 4]
    # Other kinds have their own budget: chat still goes through.
    await leader.send("chat", {"text": "still here"})
    assert (await follower.expect("chat"))["data"]["text"] == "still here"
    await leader.disconnect()
    await follower.disconnect()


async def test_viewport_and_pointer_messages_touch_no_database(
    monkeypatch: pytest.MonkeyPatch, adhoc_room: Room, doctor: User, clerk: User
) -> None:
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    calls: list[str] = []
    real = consumers.database_sync_to_async

    def counting(function: Any, **options: Any) -> Any:
        calls.append(getattr(function, "__name__", "?"))
        return real(function, **options)

    monkeypatch.setattr(consumers, "database_sync_to_async", counting)
    for image in range(10):
        await leader.send("viewport", viewport(image))
        await leader.send("pointer", {"series": SERIES, "image": image, "x": 1.5, "y": 2.5}, id=None)
    received = await follower.drain(quiet=0.3)
    assert len([m for m in received if m["type"] == "viewport"]) == 10
    assert len([m for m in received if m["type"] == "pointer"]) == 10
    assert calls == []
    await leader.disconnect()
    await follower.disconnect()


async def test_viewport_and_pointer_messages_wait_for_no_thread(
    monkeypatch: pytest.MonkeyPatch, adhoc_room: Room, doctor: User, clerk: User
) -> None:
    """Channels' per-message hop to the sync thread (close_old_connections) is not taken on the hot path."""
    import channels.consumer

    leader, follower = await two_in(adhoc_room, doctor, clerk)
    hops: list[int] = []
    real = channels.consumer.aclose_old_connections

    async def counting() -> None:
        hops.append(1)
        await real()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting)
    for image in range(5):
        await leader.send("viewport", viewport(image))
        await leader.send("pointer", {"series": SERIES, "image": image, "x": 1.5, "y": 2.5}, id=None)
    received = await follower.drain(quiet=0.3)
    assert [m["type"] for m in received].count("viewport") == 5
    assert hops == []
    await leader.disconnect()
    await follower.disconnect()


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"), reason="SQLite keeps the one thread (in_thread)"
)
async def test_joining_does_its_database_work_off_the_thread_new_connections_authenticate_on(
    monkeypatch: pytest.MonkeyPatch, adhoc_room: Room, doctor: User
) -> None:
    import threading

    from coreading import services

    # Channels' AuthMiddleware looks users up on asgiref's one thread for synchronous code.
    auth_thread = await sync_to_async(threading.get_ident)()
    threads: list[int] = []
    real_enter, real_snapshot = services.enter, services.snapshot

    def enter(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return real_enter(*args, **kwargs)

    def snapshot(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return real_snapshot(*args, **kwargs)

    monkeypatch.setattr(services, "enter", enter)
    monkeypatch.setattr(services, "snapshot", snapshot)
    participant = await Participant.connect(doctor, str(adhoc_room.uuid))
    await participant.join()
    assert len(threads) == 2 and auth_thread not in threads
    await participant.disconnect()


async def test_only_the_leader_moves_the_view_until_it_hands_over(adhoc_room: Room, doctor: User, clerk: User) -> None:
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    follower_conn = follower.snapshot["data"]["you"]["conn"]
    leader_conn = leader.snapshot["data"]["you"]["conn"]
    assert leader.snapshot["data"]["leader"] == leader_conn
    refused_id = await follower.send("viewport", viewport(3))
    error = await follower.expect("error")
    assert (error["id"], error["data"]["code"]) == (refused_id, protocol.NOT_LEADER)

    await follower.send("leader.request", id=None)
    assert (await leader.expect("leader.requested"))["data"] == {"conn": follower_conn}
    await leader.send("leader.grant", {"to": follower_conn})
    changed = await follower.expect("leader.changed")
    assert changed["data"] == {"leader": follower_conn, "previous": leader_conn, "reason": "granted"}

    await follower.send("viewport", viewport(9))
    assert (await leader.expect("viewport"))["data"]["cells"][0]["image"] == 9
    await leader.send("viewport", viewport(1))
    assert (await leader.expect("error"))["data"]["code"] == protocol.NOT_LEADER
    await leader.disconnect()
    await follower.disconnect()


async def test_a_layout_with_an_empty_cell_reaches_the_follower_as_is(
    adhoc_room: Room, doctor: User, clerk: User
) -> None:
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    cells = [{"series": SERIES, "image": 3}, {"series": None}]
    await leader.send("viewport", {"layout": "1x2", "active": 1, "cells": cells})
    received = (await follower.expect("viewport"))["data"]
    assert [cell["series"] for cell in received["cells"]] == [SERIES, None]
    assert received["active"] == 1 and received["cells"][1]["image"] == 0
    await leader.disconnect()
    await follower.disconnect()


async def test_when_the_leader_leaves_the_longest_present_leads(adhoc_room: Room, doctor: User, clerk: User) -> None:
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    leader_conn = leader.snapshot["data"]["you"]["conn"]
    follower_conn = follower.snapshot["data"]["you"]["conn"]
    await leader.disconnect()
    changed = await follower.expect("leader.changed")
    assert changed["data"] == {"leader": follower_conn, "previous": leader_conn, "reason": "left"}
    await follower.send("viewport", viewport(2))
    assert (await follower.expect("viewport"))["from"] == follower_conn
    await follower.disconnect()


async def test_free_mode_is_announced(adhoc_room: Room, doctor: User, clerk: User) -> None:
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    await follower.send("mode", {"mode": "free"})
    updated = await leader.expect("presence.updated")
    assert updated["data"] == {"conn": follower.snapshot["data"]["you"]["conn"], "mode": "free"}
    await leader.disconnect()
    await follower.disconnect()


async def test_annotations_are_edited_and_deleted_by_anyone_with_versions(
    adhoc_room: Room, doctor: User, clerk: User
) -> None:
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    await leader.send("annotation.create", length())
    created = (await follower.expect("annotation.created"))["data"]
    assert created["author"] == {"user": doctor.pk, "name": doctor.name}
    assert created["colour"] == leader.snapshot["data"]["you"]["colour"]
    await follower.send("annotation.update", {"annotation": created["id"], "version": 1, "text": "9 mm"})
    updated = (await leader.expect("annotation.updated"))["data"]
    assert (updated["version"], updated["text"], updated["updated_by"]["user"]) == (2, "9 mm", clerk.pk)
    assert updated["author"]["user"] == doctor.pk  # still attributed to who drew it

    stale = await leader.send("annotation.update", {"annotation": created["id"], "version": 1, "text": "7 mm"})
    conflict = await leader.expect("error")
    assert (conflict["id"], conflict["data"]["code"]) == (stale, protocol.CONFLICT)
    assert conflict["data"]["annotation"]["text"] == "9 mm"

    bad_points = await leader.send("annotation.update", {"annotation": created["id"], "version": 2, "points": [[1, 2]]})
    assert (await leader.expect("error"))["id"] == bad_points

    await leader.send("annotation.delete", {"annotation": created["id"]})
    deleted = await follower.expect("annotation.deleted")
    assert deleted["data"] == {"annotation": created["id"], "version": 3}
    missing = await follower.send("annotation.delete", {"annotation": created["id"]})
    error = await follower.expect("error")
    assert (error["id"], error["data"]["code"]) == (missing, protocol.NOT_FOUND)
    assert (await Annotation.objects.aget(uuid=created["id"])).deleted_at is not None
    await leader.disconnect()
    await follower.disconnect()


async def test_a_new_joiner_gets_everything_in_the_snapshot(
    adhoc_room: Room, doctor: User, clerk: User, clinic_admin: User
) -> None:
    await sync_to_async(_invite)(adhoc_room, doctor, clinic_admin)
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    await leader.send("viewport", viewport(12))
    await leader.send("annotation.create", length())
    await follower.send("chat", {"text": "첫 번째"})
    await follower.send("chat", {"text": "두 번째"})
    await leader.drain(quiet=0.3)
    late = await Participant.connect(clinic_admin, str(adhoc_room.uuid))
    snapshot = (await late.join())["data"]
    assert [p["user"] for p in snapshot["participants"]] == [doctor.pk, clerk.pk, clinic_admin.pk]
    assert snapshot["leader"] == leader.snapshot["data"]["you"]["conn"]
    assert snapshot["viewport"]["cells"][0]["image"] == 12
    assert [a["text"] for a in snapshot["annotations"]] == ["8 mm"]
    assert [c["text"] for c in snapshot["chat"]] == ["첫 번째", "두 번째"]
    assert snapshot["seq"] >= max(m["seq"] for m in leader.seen if "seq" in m)
    for participant in (leader, follower, late):
        await participant.disconnect()


def _invite(room: Room, owner: User, user: User) -> None:
    from coreading import services

    services.participant_invite(room=room, actor=owner, who=user.username)


async def test_a_reconnecting_client_catches_up_from_the_replay_log(
    adhoc_room: Room, doctor: User, clerk: User
) -> None:
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    snapshot = follower.snapshot["data"]
    last_seq = max([snapshot["seq"], *(m["seq"] for m in follower.seen if "seq" in m)])
    await follower.disconnect()
    for image in range(3):
        await leader.send("viewport", viewport(image))
    await leader.send("chat", {"text": "다시 오세요"})
    await leader.drain(quiet=0.3)

    back = await Participant.connect(clerk, str(adhoc_room.uuid))
    await back.send("join", {"resume": {"epoch": snapshot["epoch"], "seq": last_seq}}, id=None)
    resumed = await back.expect("resumed")
    missed = [m for m in back.seen if "seq" in m and m["seq"] <= resumed["data"]["seq"]]
    kinds = [m["type"] for m in missed]
    assert kinds[:5] == ["presence.left", "viewport", "viewport", "viewport", "chat"]
    assert [m["seq"] for m in missed] == list(range(last_seq + 1, resumed["data"]["seq"] + 1))
    assert resumed["data"]["epoch"] == snapshot["epoch"]
    assert not [m for m in back.seen if m["type"] == "snapshot"]
    await leader.disconnect()
    await back.disconnect()


async def test_a_client_too_far_behind_or_from_another_epoch_gets_a_fresh_snapshot(
    settings: Any, adhoc_room: Room, doctor: User, clerk: User
) -> None:
    settings.COREADING_REPLAY_LOG = 5
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    snapshot = follower.snapshot["data"]
    await follower.disconnect()
    for image in range(10):
        await leader.send("viewport", viewport(image))
    await leader.drain(quiet=0.3)
    for resume in ({"epoch": snapshot["epoch"], "seq": snapshot["seq"]}, {"epoch": "another", "seq": 3}):
        back = await Participant.connect(clerk, str(adhoc_room.uuid))
        await back.send("join", {"resume": resume}, id=None)
        fresh = await back.expect("snapshot")
        assert fresh["data"]["viewport"]["cells"][0]["image"] == 9
        await back.disconnect()
    # A gap inside a session is filled the same way with "sync".
    await leader.send("sync", {"seq": 1}, id=None)
    assert (await leader.expect("snapshot"))["data"]["epoch"] == snapshot["epoch"]
    await leader.disconnect()


async def test_every_bad_message_gets_an_error_to_its_sender_alone_and_the_room_goes_on(
    adhoc_room: Room, doctor: User, clerk: User
) -> None:
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    bad = [
        ("not json", protocol.BAD_JSON),
        (json.dumps([1]), protocol.BAD_MESSAGE),
        (json.dumps({"v": 9, "type": "chat", "id": "x", "data": {"text": "a"}}), protocol.UNSUPPORTED_VERSION),
        (json.dumps({"v": 1, "type": "shout", "id": "x"}), protocol.UNKNOWN_TYPE),
        (json.dumps({"v": 1, "type": "chat", "id": "x", "data": {"text": ""}}), protocol.BAD_MESSAGE),
        (json.dumps({"v": 1, "type": "chat", "data": {"text": "no id"}}), protocol.BAD_MESSAGE),
        (json.dumps({"v": 1, "type": "viewport", "id": "y", "data": {"layout": "9x9"}}), protocol.BAD_MESSAGE),
        (json.dumps({"v": 1, "type": "chat", "id": "z", "data": {"text": "x" * 20000}}), protocol.TOO_LARGE),
        (json.dumps({"v": 1, "type": "join", "data": {}}), protocol.BAD_MESSAGE),  # joined already
    ]
    for text, code in bad:
        await leader.send_raw(text)
        error = await leader.expect("error")
        assert error["data"]["code"] == code, text
        assert error["data"]["message"]
    await leader.send_raw(data=b"\x00\x01")
    assert (await leader.expect("error"))["data"]["code"] == protocol.BAD_MESSAGE
    assert await follower.communicator.receive_nothing(timeout=0.3)  # the others saw none of it
    await leader.send("chat", {"text": "계속"})
    assert (await follower.expect("chat"))["data"]["text"] == "계속"
    await leader.disconnect()
    await follower.disconnect()


async def test_messages_before_join_are_refused(adhoc_room: Room, doctor: User) -> None:
    participant = await Participant.connect(doctor, str(adhoc_room.uuid))
    message_id = await participant.send("chat", {"text": "hello"})
    error = await participant.expect("error")
    assert (error["id"], error["data"]["code"]) == (message_id, protocol.NOT_JOINED)
    await participant.send("ping", id=None)
    await participant.expect("pong")
    await participant.disconnect()


async def test_flooding_is_dropped_but_the_connection_stays(
    settings: Any, adhoc_room: Room, doctor: User, clerk: User
) -> None:
    settings.COREADING_MESSAGE_RATE = 5
    leader, follower = await two_in(adhoc_room, doctor, clerk)
    for number in range(40):
        await follower.send("mode", {"mode": "free" if number % 2 else "follow"})
    errors = [m for m in await follower.drain(quiet=0.3) if m["type"] == "error"]
    assert [e["data"]["code"] for e in errors] == [protocol.RATE_LIMITED]
    updates = [m for m in await leader.drain(quiet=0.3) if m["type"] == "presence.updated"]
    assert len(updates) == 10  # the burst (twice the rate); the rest dropped
    await follower.send("ping", id=None)
    await follower.expect("pong")
    await leader.disconnect()
    await follower.disconnect()
