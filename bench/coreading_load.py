"""Co-reading under load: rooms of participants on two ASGI processes over Redis.

    .venv/bin/python -m bench.coreading_load                      # 50 rooms × 5, 2 daphne, 30 s
    .venv/bin/python -m bench.coreading_load --layer redis-pubsub # the pub/sub channel layer
    .venv/bin/python -m bench.coreading_load --idle 2000          # idle participants one process holds

Starts a private redis-server and daphne processes (coreading.cluster), seeds
people, a real CT study and rooms, then connects every participant with the
``websockets`` client (participant i of a room to server i mod N, so every room
spans the processes). Each room's leader sends viewport changes at 10 Hz and
pointer moves at 20 Hz; the others receive. Fan-out latency is measured from
the send time carried in the message (the viewport's client id, the pointer's
x coordinate) to its arrival at each other participant. Clients run in two
worker processes so that the load generator is not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

from coreading.cluster import cluster

SERIES = "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
WRAP = 1_000_000.0  # pointer x carries the send time in ms modulo this


def now_ms() -> float:
    return time.time() * 1000.0


async def participant(
    port: int, room: str, cookie: str, leader: bool, args: argparse.Namespace, stats: dict[str, Any]
) -> None:
    for attempt in range(5):  # reconnect as a browser would when a handshake is dropped under load
        try:
            socket = await connect(
                f"ws://127.0.0.1:{port}/ws/coreading/{room}/",
                additional_headers={"Cookie": cookie},
                origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
                open_timeout=60,
                max_queue=None,
            )
            break
        except (OSError, InvalidMessage):
            stats["retries"] += 1
            await asyncio.sleep(0.5 * (attempt + 1))
    else:
        raise RuntimeError("could not connect")
    async with socket:
        await socket.send(json.dumps({"v": 1, "type": "join", "data": {}}))
        snapshot = json.loads(await socket.recv())
        while snapshot["type"] != "snapshot":
            snapshot = json.loads(await socket.recv())
        stats["joined"] += 1
        # The first to join leads (docs/coreading.md); it sends, the others receive.
        leader = snapshot["data"]["leader"] == snapshot["data"]["you"]["conn"]
        await stats["start"].wait()
        tasks = []
        if leader:
            tasks.append(asyncio.create_task(send_loop(socket, room, args, stats)))
        tasks.append(asyncio.create_task(receive_loop(socket, stats, leader)))
        await stats["stop"].wait()
        for task in tasks:
            task.cancel()


async def send_loop(socket: Any, room: str, args: argparse.Namespace, stats: dict[str, Any]) -> None:
    tick = 1.0 / args.pointer_hz
    every = max(1, round(args.pointer_hz / args.viewport_hz))
    number = 0
    next_at = time.monotonic()
    while True:
        number += 1
        sent = now_ms()
        await socket.send(
            json.dumps(
                {"v": 1, "type": "pointer", "data": {"series": SERIES, "image": number % 100, "x": sent % WRAP, "y": 1}}
            )
        )
        stats["sent_pointer"] += 1
        if number % every == 0:
            cells = [{"series": SERIES, "image": number % 100, "zoom": 1.2, "window": {"center": 40, "width": 400}}]
            message_id = f"v{number}-{int(sent * 1000)}"
            await socket.send(
                json.dumps({"v": 1, "type": "viewport", "id": message_id, "data": {"layout": "1x1", "cells": cells}})
            )
            stats["sent_viewport"] += 1
        next_at += tick
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def receive_loop(socket: Any, stats: dict[str, Any], leader: bool) -> None:
    async for text in socket:
        arrived = now_ms()
        message = json.loads(text)
        kind = message["type"]
        stats["received"] += 1
        if kind == "pointer":
            stats["pointer"].append((arrived % WRAP - message["data"]["x"]) % WRAP)
        elif kind == "viewport":
            if leader:  # its own echo
                continue
            sent = int(message["id"].split("-")[1]) / 1000.0
            stats["viewport"].append(arrived - sent)
        elif kind == "error":
            stats["errors"] += 1


def worker(rooms: list[dict[str, Any]], ports: list[int], args: argparse.Namespace, barrier: Any, queue: Any) -> None:
    async def main() -> dict[str, Any]:
        stats: dict[str, Any] = {
            "joined": 0,
            "received": 0,
            "sent_pointer": 0,
            "sent_viewport": 0,
            "errors": 0,
            "retries": 0,
            "pointer": [],
            "viewport": [],
            "start": asyncio.Event(),
            "stop": asyncio.Event(),
        }
        tasks = []
        for room in rooms:
            for index, cookie in enumerate(room["cookies"]):
                port = ports[index % len(ports)]
                tasks.append(asyncio.create_task(participant(port, room["id"], cookie, index == 0, args, stats)))
                await asyncio.sleep(0.01)
                if index == 0:
                    await asyncio.sleep(0.1)  # the first in leads
        while stats["joined"] < len(tasks):
            failed = [task for task in tasks if task.done() and task.exception() is not None]
            if failed:
                raise RuntimeError(f"{len(failed)} participants could not join") from failed[0].exception()
            await asyncio.sleep(0.1)
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
        stats["start"].set()
        await asyncio.sleep(args.warmup)
        stats["pointer"].clear()
        stats["viewport"].clear()
        received, sent_p, sent_v = stats["received"], stats["sent_pointer"], stats["sent_viewport"]
        await asyncio.sleep(args.duration)
        result = {
            "received": stats["received"] - received,
            "sent_pointer": stats["sent_pointer"] - sent_p,
            "sent_viewport": stats["sent_viewport"] - sent_v,
            "errors": stats["errors"],
            "retries": stats["retries"],
            "pointer": list(stats["pointer"]),
            "viewport": list(stats["viewport"]),
        }
        stats["stop"].set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return result

    queue.put(asyncio.run(main()))


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def load(args: argparse.Namespace) -> None:
    settings = {"CHANNEL_LAYER": args.layer}
    with (
        tempfile.TemporaryDirectory(prefix="coreading-bench-") as folder,
        cluster(Path(folder), servers=args.servers, **settings) as local,
    ):
        data = local.seed(args.rooms, args.per_room, sessions=True)
        servers = [psutil.Process(server.pid) for server in local.servers]
        redis = psutil.Process(local.redis.pid)  # type: ignore[union-attr]
        halves = [data["rooms"][0::2], data["rooms"][1::2]]
        barrier = multiprocessing.Barrier(len(halves) + 1)
        queue: Any = multiprocessing.Queue()
        workers = [
            multiprocessing.Process(target=worker, args=(half, local.ports, args, barrier, queue)) for half in halves
        ]
        for process in workers:
            process.start()
        barrier.wait()
        time.sleep(args.warmup)
        for process in [*servers, redis]:
            process.cpu_percent(None)
        started = time.monotonic()
        time.sleep(args.duration)
        elapsed = time.monotonic() - started
        cpu = [process.cpu_percent(None) for process in servers]
        redis_cpu = redis.cpu_percent(None)
        rss = [process.memory_info().rss / 2**20 for process in servers]
        results = [queue.get(timeout=120) for _ in workers]
        for process in workers:
            process.join(60)
        dropped = local.manage("shell", "-c", DROPPED).strip().splitlines()[-1]
    pointer = [value for result in results for value in result["pointer"]]
    viewport = [value for result in results for value in result["viewport"]]
    received = sum(result["received"] for result in results)
    sent_pointer = sum(result["sent_pointer"] for result in results)
    sent_viewport = sum(result["sent_viewport"] for result in results)
    receivers = args.per_room - 1
    print_header(args)
    print(f"rooms × participants        {args.rooms} × {args.per_room} on {args.servers} daphne, layer {args.layer}")
    print(f"measured                    {elapsed:.0f} s after {args.warmup:.0f} s warm-up")
    print(
        f"sent                        {sent_viewport / elapsed:.0f} viewport/s, {sent_pointer / elapsed:.0f} pointer/s"
    )
    print(f"delivered                   {received / elapsed:.0f} messages/s")
    for name, values in (("viewport", viewport), ("pointer", pointer)):
        print(
            f"{name} fan-out latency ms    p50 {percentile(values, 0.5):.1f}  p95 {percentile(values, 0.95):.1f}  "
            f"p99 {percentile(values, 0.99):.1f}  max {max(values or [0]):.1f}  (n={len(values)})"
        )
    expected_pointer = sent_pointer * receivers
    print(
        f"pointer delivered           {len(pointer)} of {expected_pointer} expected "
        f"({100 * len(pointer) / max(1, expected_pointer):.2f} %); server-counted drops: {dropped}"
    )
    print(f"viewport delivered          {len(viewport)} of {sent_viewport * receivers} expected")
    print(f"errors to senders           {sum(result['errors'] for result in results)}")
    print(f"handshakes retried          {sum(result['retries'] for result in results)}")
    print(
        f"server CPU %                {', '.join(f'{value:.0f}' for value in cpu)} (100 = one core); "
        f"redis {redis_cpu:.0f}"
    )
    print(f"server RSS MiB              {', '.join(f'{value:.0f}' for value in rss)}")
    if viewport:
        print(f"viewport latency mean       {statistics.fmean(viewport):.1f} ms")


DROPPED = (
    "import redis; from django.conf import settings; "
    "print(redis.Redis.from_url(settings.COREADING_REDIS_URL).hget('coreading:stats', 'pointer_dropped') or 0)"
)


async def idle_clients(port: int, rooms: list[dict[str, Any]], count: int) -> list[Any]:
    sockets: list[Any] = []
    cookies = [(room["id"], cookie) for room in rooms for cookie in room["cookies"]]
    for number in range(count):
        room, cookie = cookies[number % len(cookies)]
        socket = await connect(
            f"ws://127.0.0.1:{port}/ws/coreading/{room}/",
            additional_headers={"Cookie": cookie},
            origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
            open_timeout=60,
            max_queue=None,
        )
        await socket.send(json.dumps({"v": 1, "type": "join", "data": {}}))
        sockets.append(socket)
    return sockets


def idle(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="coreading-bench-") as folder,
        cluster(Path(folder), servers=1, CHANNEL_LAYER=args.layer) as local,
    ):
        data = local.seed(args.idle // 50, 5, sessions=True)
        server = psutil.Process(local.servers[0].pid)
        before = server.memory_info().rss / 2**20

        async def main() -> tuple[int, float, float]:
            started = time.monotonic()
            sockets = await idle_clients(local.ports[0], data["rooms"], args.idle)
            connect_time = time.monotonic() - started
            await asyncio.sleep(args.duration)  # several heartbeats
            alive = 0
            probe_started = time.monotonic()
            for socket in sockets:
                try:
                    await socket.send(json.dumps({"v": 1, "type": "ping", "data": {}}))
                    alive += 1
                except Exception:  # noqa: BLE001  (a closed socket counts as lost)
                    pass
            await asyncio.sleep(2)
            probe = time.monotonic() - probe_started
            for socket in sockets:
                await socket.close()
            return alive, connect_time, probe

        server.cpu_percent(None)
        alive, connect_time, probe = asyncio.run(main())
        after = server.memory_info().rss / 2**20
        cpu = server.cpu_percent(None)
        log = local.server_log(0)
    print_header(args)
    print(f"idle participants           {args.idle} joined to one daphne process ({args.idle // 5} rooms × 5 shared)")
    print(f"connected and joined in     {connect_time:.1f} s")
    print(
        f"still connected after {args.duration:.0f} s {alive} of {args.idle} (all answered a ping round: {probe:.1f} s)"
    )
    print(
        f"server RSS MiB              {before:.0f} before, {after:.0f} with them "
        f"({(after - before) * 1024 / args.idle:.0f} KiB each)"
    )
    print(f"server CPU % while idle     {cpu:.0f} (heartbeats every 5 s each)")
    print(f"errors in the server log    {log.count('Traceback')}")


def print_header(args: argparse.Namespace) -> None:
    print(
        f"machine                     {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    print(f"command                     {' '.join(sys.argv)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--per-room", type=int, default=5)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--viewport-hz", type=float, default=10)
    parser.add_argument("--pointer-hz", type=float, default=20)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--layer", choices=["redis", "redis-pubsub"], default="redis")
    parser.add_argument("--idle", type=int, default=0, help="hold this many idle participants on one process instead")
    args = parser.parse_args()
    if args.idle:
        idle(args)
    else:
        load(args)


if __name__ == "__main__":
    main()
