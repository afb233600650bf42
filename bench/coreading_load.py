"""Co-reading under load: rooms of participants on two ASGI processes over Redis and PostgreSQL.

    .venv/bin/python -m bench.coreading_load                       # 50 rooms × 5, 2 web processes, 30 s
    .venv/bin/python -m bench.coreading_load --layer redis         # the list-based RedisChannelLayer
    .venv/bin/python -m bench.coreading_load --idle 2000           # idle participants one process holds

Starts a private redis-server and web processes (``manage.py serve``, uvicorn;
coreading.cluster) on a dedicated PostgreSQL database (``--database``, created
and dropped here; ``""`` for SQLite in a temporary folder), seeds people, a real CT study and rooms, then
connects every participant with the ``websockets`` client, ``--connect-rate`` a
second (participant i of room r to server (i + r) mod N, so every room spans the
processes and the leaders are spread over them). Each room's leader sends viewport changes at 10 Hz and pointer moves
at 20 Hz; the others receive. Fan-out latency is measured from the send time
carried in the message (the viewport's client id, the pointer's x coordinate) to
its arrival at each other participant; only messages sent inside the measured
window count, and the senders go on for a grace period so that none of those is
still in flight when counting. Clients run in two worker processes so that the
load generator is not the bottleneck (their CPU is reported too: on a 2-core
machine they compete with the servers).

The machine's load average is printed before the cluster starts (other people's
work) and during the measured window. ``--quiet-load 1.5`` waits (up to
``--quiet-wait`` seconds) until the 1-minute load average is below 1.5 first.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from bench.machine import load_average, wait_for_quiet
from coreading.cluster import cluster

SERIES = "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
WRAP = 1_000_000.0  # pointer x carries the send time in ms modulo this
GRACE = 3.0  # seconds the senders go on after the window, so that its messages arrive
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/clinicnet_coreading_bench"


def now_ms() -> float:
    return time.time() * 1000.0


def raise_open_files(needed: int) -> int:
    """Raise this process's open-file limit (children inherit it) towards *needed*; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return int(soft)


async def open_socket(port: int, room: str, cookie: str, stats: dict[str, Any]) -> ClientConnection:
    """Connect as a browser would: retry a dropped or refused handshake with backoff."""
    for attempt in range(6):
        try:
            return await connect(
                f"ws://127.0.0.1:{port}/ws/coreading/{room}/",
                additional_headers={"Cookie": cookie},
                origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
                open_timeout=30,
                max_queue=None,
            )
        except (OSError, InvalidMessage, InvalidStatus, TimeoutError):
            stats["retries"] += 1
            await asyncio.sleep(0.5 * 2**attempt)
    raise RuntimeError("could not connect")


async def join(socket: ClientConnection) -> dict[str, Any]:
    await socket.send(json.dumps({"v": 1, "type": "join", "data": {}}))
    while True:
        message = json.loads(await socket.recv())
        if message["type"] == "snapshot":
            return dict(message["data"])
        if message["type"] == "error":
            raise RuntimeError(f"join refused: {message}")


# --- Load: leaders send, everyone receives ------------------------------------------------------


async def participant(port: int, room: str, cookie: str, args: argparse.Namespace, stats: dict[str, Any]) -> None:
    socket = await open_socket(port, room, cookie, stats)
    async with socket:
        snapshot = await join(socket)
        stats["joined"] += 1
        # The first to join leads (docs/coreading.md); it sends, the others receive.
        leader = snapshot["leader"] == snapshot["you"]["conn"]
        await stats["start"].wait()
        tasks = [asyncio.create_task(receive_loop(socket, stats, leader))]
        if leader:
            stats["leaders"] += 1
            tasks.append(asyncio.create_task(send_loop(socket, args, stats)))
        await stats["stop"].wait()
        for task in tasks:
            task.cancel()


async def send_loop(socket: ClientConnection, args: argparse.Namespace, stats: dict[str, Any]) -> None:
    tick = 1.0 / args.pointer_hz
    every = max(1, round(args.pointer_hz / args.viewport_hz))
    number = 0
    next_at = time.monotonic()
    while True:
        number += 1
        sent = now_ms()
        pointer = {"series": SERIES, "image": number % 100, "x": sent % WRAP, "y": 1}
        await socket.send(json.dumps({"v": 1, "type": "pointer", "data": pointer}))
        stats["sent_pointer"].append(sent)
        if number % every == 0:
            cells = [{"series": SERIES, "image": number % 100, "zoom": 1.2, "window": {"center": 40, "width": 400}}]
            message_id = f"v{number}-{int(sent * 1000)}"
            body = {"v": 1, "type": "viewport", "id": message_id, "data": {"layout": "1x1", "cells": cells}}
            await socket.send(json.dumps(body))
            stats["sent_viewport"].append(sent)
        next_at += tick
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def receive_loop(socket: ClientConnection, stats: dict[str, Any], leader: bool) -> None:
    try:
        async for text in socket:
            arrived = now_ms()
            message = json.loads(text)
            kind = message["type"]
            stats["arrivals"].append(arrived)
            if kind == "pointer":
                latency = (arrived % WRAP - message["data"]["x"]) % WRAP
                stats["pointer"].append((arrived - latency, latency))
            elif kind == "viewport" and not leader:  # the leader's own echo is not fan-out
                sent = int(message["id"].split("-")[1]) / 1000.0
                stats["viewport"].append((sent, arrived - sent))
            elif kind == "error":
                stats["errors"][message["data"]["code"]] += 1
    except ConnectionClosed as closed:
        stats["closed"][closed.rcvd.code if closed.rcvd else None] += 1


def worker(
    rooms: list[dict[str, Any]],
    ports: list[int],
    args: argparse.Namespace,
    delay: float,
    barrier: Any,
    queue: Any,
) -> None:
    async def main() -> dict[str, Any]:
        stats: dict[str, Any] = {
            "joined": 0,
            "leaders": 0,
            "retries": 0,
            "sent_pointer": [],
            "sent_viewport": [],
            "arrivals": [],
            "pointer": [],
            "viewport": [],
            "errors": collections.Counter(),
            "closed": collections.Counter(),
            "start": asyncio.Event(),
            "stop": asyncio.Event(),
        }
        tasks = []
        started = time.monotonic()
        # Staggered: the first of each room first (it leads), then the others, *delay* apart.
        for index in range(args.per_room):
            for number, room in enumerate(rooms):
                port = ports[(index + number) % len(ports)]  # leaders on every process, each room on all
                tasks.append(asyncio.create_task(participant(port, room["id"], room["cookies"][index], args, stats)))
                await asyncio.sleep(delay)
        while stats["joined"] < len(tasks):
            failed = [task for task in tasks if task.done() and task.exception() is not None]
            if failed:
                raise RuntimeError(f"{len(failed)} participants could not join") from failed[0].exception()
            await asyncio.sleep(0.1)
        connect_seconds = time.monotonic() - started
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
        window_start = time.time() * 1000 + args.warmup * 1000
        window_end = window_start + args.duration * 1000
        stats["start"].set()
        await asyncio.sleep(args.warmup + args.duration + GRACE)
        stats["stop"].set()
        await asyncio.gather(*tasks, return_exceptions=True)

        def inside(sent: float) -> bool:
            return window_start <= sent < window_end

        return {
            "joined": stats["joined"],
            "leaders": stats["leaders"],
            "retries": stats["retries"],
            "connect_seconds": connect_seconds,
            "sent_pointer": sum(1 for sent in stats["sent_pointer"] if inside(sent)),
            "sent_viewport": sum(1 for sent in stats["sent_viewport"] if inside(sent)),
            "delivered": sum(1 for arrived in stats["arrivals"] if inside(arrived)),
            "pointer": [latency for sent, latency in stats["pointer"] if inside(sent)],
            "viewport": [latency for sent, latency in stats["viewport"] if inside(sent)],
            "errors": dict(stats["errors"]),
            "closed": dict(stats["closed"]),
        }

    queue.put(asyncio.run(main()))


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def cluster_settings(args: argparse.Namespace) -> dict[str, str]:
    settings = {"CHANNEL_LAYER": args.layer}
    if args.database:
        settings["DATABASE_POOL"] = "true" if args.pool else "false"
    return settings


def load(args: argparse.Namespace) -> None:
    raise_open_files(4 * args.rooms * args.per_room + 1024)
    wait_for_quiet(args.quiet_load, args.quiet_wait)
    load_before = load_average()
    with (
        tempfile.TemporaryDirectory(prefix="coreading-bench-") as folder,
        cluster(Path(folder), servers=args.servers, database_url=args.database, **cluster_settings(args)) as local,
    ):
        data = local.seed(args.rooms, args.per_room, sessions=True)
        servers = [psutil.Process(server.pid) for server in local.servers]
        redis = psutil.Process(local.redis.pid)  # type: ignore[union-attr]
        halves = [data["rooms"][0::2], data["rooms"][1::2]]
        barrier = multiprocessing.Barrier(len(halves) + 1)
        queue: Any = multiprocessing.Queue()
        delay = len(halves) / args.connect_rate  # each worker connects at its share of the rate
        workers = [
            multiprocessing.Process(target=worker, args=(half, local.ports, args, delay, barrier, queue))
            for half in halves
        ]
        for process in workers:
            process.start()
        barrier.wait(timeout=600)
        clients = [psutil.Process(process.pid) for process in workers]
        time.sleep(args.warmup)
        for process in [*servers, redis, *clients]:
            process.cpu_percent(None)
        load_start = load_average()
        started = time.monotonic()
        time.sleep(args.duration)
        elapsed = time.monotonic() - started
        cpu = [process.cpu_percent(None) for process in servers]
        redis_cpu = redis.cpu_percent(None)
        client_cpu = sum(process.cpu_percent(None) for process in clients)
        rss = [process.memory_info().rss / 2**20 for process in servers]
        load_end = load_average()
        results = [queue.get(timeout=300) for _ in workers]
        for process in workers:
            process.join(60)
        dropped = local.manage("shell", "-c", DROPPED).strip().splitlines()[-1]
        tracebacks = sum(local.server_log(number).count("Traceback") for number in range(args.servers))
        keep_logs(args, local)
    pointer = [value for result in results for value in result["pointer"]]
    viewport = [value for result in results for value in result["viewport"]]
    delivered = sum(result["delivered"] for result in results)
    sent_pointer = sum(result["sent_pointer"] for result in results)
    sent_viewport = sum(result["sent_viewport"] for result in results)
    errors: collections.Counter[str] = collections.Counter()
    closed: collections.Counter[Any] = collections.Counter()
    for result in results:
        errors.update(result["errors"])
        closed.update(result["closed"])
    receivers = args.per_room - 1
    expected_pointer = sent_pointer * receivers
    lost_pointer = expected_pointer - len(pointer)
    database = "PostgreSQL" + (" (pool)" if args.pool else "") if args.database else "SQLite"
    print_header(args)
    print(f"load average before start    {load_before}")
    print(f"load average in the window   {load_start} at its start, {load_end} at its end")
    print(
        f"rooms × participants        {args.rooms} × {args.per_room} on {args.servers} web processes, "
        f"layer {args.layer}, {database}"
    )
    connect = max(result["connect_seconds"] for result in results)
    retries = sum(result["retries"] for result in results)
    print(f"connected and joined        {sum(r['joined'] for r in results)} in {connect:.1f} s, {retries} retried")
    print(f"measured                    {elapsed:.0f} s after {args.warmup:.0f} s warm-up")
    print(
        f"sent                        {sent_viewport / args.duration:.0f} viewport/s, "
        f"{sent_pointer / args.duration:.0f} pointer/s"
    )
    print(f"delivered                   {delivered / args.duration:.0f} messages/s")
    for name, values in (("viewport", viewport), ("pointer", pointer)):
        print(
            f"{name} fan-out latency ms    p50 {percentile(values, 0.5):.1f}  p95 {percentile(values, 0.95):.1f}  "
            f"p99 {percentile(values, 0.99):.1f}  max {max(values or [0]):.1f}  (n={len(values)})"
        )
    print(
        f"pointer delivered           {len(pointer)} of {expected_pointer} "
        f"({lost_pointer} lost, {100 * lost_pointer / max(1, expected_pointer):.2f} %); "
        f"server-counted rate-limit drops: {dropped}"
    )
    print(f"viewport delivered          {len(viewport)} of {sent_viewport * receivers}")
    print(f"errors to senders           {dict(errors) or 0}")
    print(f"connections closed early    {dict(closed) or 0}")
    print(
        f"server CPU %                {', '.join(f'{value:.0f}' for value in cpu)} (100 = one core); "
        f"redis {redis_cpu:.0f}; load generator {client_cpu:.0f}"
    )
    print(f"server RSS MiB              {', '.join(f'{value:.0f}' for value in rss)}")
    print(f"tracebacks in server logs   {tracebacks}")
    print()
    print(
        f"| `{' '.join(sys.argv[1:]) or '(defaults)'}` | {args.layer} "
        f"| {load_before.split()[0]} / {load_end.split()[0]} "
        f"| {sent_viewport / args.duration:.0f} vp/s, {sent_pointer / args.duration:.0f} ptr/s "
        f"| {delivered / args.duration:.0f} msg/s "
        f"| {percentile(viewport, 0.5):.0f} / {percentile(viewport, 0.95):.0f} / {percentile(viewport, 0.99):.0f} "
        f"| {percentile(pointer, 0.5):.0f} / {percentile(pointer, 0.95):.0f} / {percentile(pointer, 0.99):.0f} "
        f"| {lost_pointer} ({dropped} rate-limited) "
        f"| {', '.join(f'{value:.0f}' for value in cpu)} (redis {redis_cpu:.0f}, clients {client_cpu:.0f}) "
        f"| {', '.join(f'{value:.0f}' for value in rss)} |"
    )


DROPPED = (
    "import redis; from django.conf import settings; "
    "print(int(redis.Redis.from_url(settings.COREADING_REDIS_URL).hget('coreading:stats', 'pointer_dropped') or 0))"
)


# --- Idle capacity: how many joined participants one process holds ------------------------------


class IdleClient:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.pongs = 0
        self.pong = asyncio.Event()
        self.closed: int | None = None
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        try:
            async for text in self.socket:
                if json.loads(text)["type"] == "pong":
                    self.pongs += 1
                    self.pong.set()
        except ConnectionClosed as closed:
            self.closed = closed.rcvd.code if closed.rcvd else 1006


async def idle_client(port: int, room: str, cookie: str, stats: dict[str, Any]) -> IdleClient:
    socket = await open_socket(port, room, cookie, stats)
    await join(socket)
    return IdleClient(socket)


def idle(args: argparse.Namespace) -> None:
    raise_open_files(2 * args.idle + 1024)
    wait_for_quiet(args.quiet_load, args.quiet_wait)
    load_before = load_average()
    with (
        tempfile.TemporaryDirectory(prefix="coreading-bench-") as folder,
        cluster(Path(folder), servers=1, database_url=args.database, **cluster_settings(args)) as local,
    ):
        # Every connection is its own person, in rooms of five.
        data = local.seed(max(1, args.idle // 5), 5, sessions=True)
        server = psutil.Process(local.servers[0].pid)
        before = server.memory_info().rss / 2**20
        stats: dict[str, Any] = {"retries": 0}

        async def main() -> dict[str, Any]:
            cookies = [(room["id"], cookie) for room in data["rooms"] for cookie in room["cookies"]][: args.idle]
            started = time.monotonic()
            pending = []
            for room, cookie in cookies:
                pending.append(asyncio.create_task(idle_client(local.ports[0], room, cookie, stats)))
                await asyncio.sleep(1 / args.connect_rate)
            outcomes = await asyncio.gather(*pending, return_exceptions=True)
            clients = [outcome for outcome in outcomes if isinstance(outcome, IdleClient)]
            failed = collections.Counter(
                type(outcome).__name__ + f" {outcome}"[:80]
                for outcome in outcomes
                if not isinstance(outcome, IdleClient)
            )
            connect_time = time.monotonic() - started
            joined_rss = server.memory_info().rss / 2**20
            server.cpu_percent(None)
            load_start = load_average()
            await asyncio.sleep(args.duration)  # heartbeats every 5 s, an access re-check every 60 s
            cpu = server.cpu_percent(None)
            load_end = load_average()
            held_rss = server.memory_info().rss / 2**20
            probe_started = time.monotonic()
            for client in clients:
                client.pong.clear()
                if client.closed is None:
                    await client.socket.send(json.dumps({"v": 1, "type": "ping", "data": {}}))
            waiting = [client.pong.wait() for client in clients if client.closed is None]
            done, _ = await asyncio.wait([asyncio.create_task(w) for w in waiting], timeout=60)
            probe = time.monotonic() - probe_started
            closed = collections.Counter(client.closed for client in clients if client.closed is not None)
            for client in clients:
                await client.socket.close()
            return {
                "connect_time": connect_time,
                "joined_rss": joined_rss,
                "held_rss": held_rss,
                "cpu": cpu,
                "answered": len(done),
                "probe": probe,
                "closed": dict(closed),
                "failed": dict(failed),
                "load_start": load_start,
                "load_end": load_end,
            }

        result = asyncio.run(main())
        log = local.server_log(0)
        keep_logs(args, local)
    per_connection = (result["held_rss"] - before) * 1024 / args.idle
    print_header(args)
    print(f"load average before start    {load_before}")
    print(f"load average while held      {result['load_start']} at the start, {result['load_end']} at the end")
    print(
        f"idle participants           {args.idle} joined to one web process ({args.idle // 5} rooms × 5), "
        f"layer {args.layer}, {'PostgreSQL' if args.database else 'SQLite'}"
    )
    print(
        f"connected and joined in     {result['connect_time']:.1f} s ({stats['retries']} handshakes retried); "
        f"could not join: {result['failed'] or 0}"
    )
    print(
        f"held for {args.duration:.0f} s, then pinged   {result['answered']} of {args.idle} answered "
        f"(all within {result['probe']:.1f} s); closed by the server: {result['closed'] or 0}"
    )
    print(
        f"server RSS MiB              {before:.0f} before, {result['joined_rss']:.0f} joined, "
        f"{result['held_rss']:.0f} after holding ({per_connection:.0f} KiB each)"
    )
    print(f"server CPU % while idle     {result['cpu']:.0f} (heartbeats every 5 s, access re-check every 60 s)")
    print(f"tracebacks in the server log {log.count('Traceback')}")
    print()
    print(
        f"| `{' '.join(sys.argv[1:])}` | {args.layer} | {load_before.split()[0]} / {result['load_end'].split()[0]} "
        f"| {result['answered']} of {args.idle} | {result['connect_time']:.0f} s "
        f"| {before:.0f} → {result['held_rss']:.0f} ({per_connection:.0f} KiB each) | {result['cpu']:.0f} |"
    )


def keep_logs(args: argparse.Namespace, local: Any) -> None:
    """Copy the servers' logs to --logs (the cluster's folder is temporary)."""
    if args.logs:
        Path(args.logs).mkdir(parents=True, exist_ok=True)
        for number in range(len(local.servers)):
            (Path(args.logs) / f"web-{number}.log").write_text(local.server_log(number))


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
    parser.add_argument("--duration", type=float, default=30, help="measured seconds (idle: seconds held)")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--layer", choices=["redis", "redis-pubsub"], default="redis-pubsub")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help='PostgreSQL URL (dropped and created); "" SQLite')
    parser.add_argument("--pool", action=argparse.BooleanOptionalAction, default=True, help="DATABASE_POOL")
    parser.add_argument("--connect-rate", type=float, default=25, help="new connections a second, all clients")
    parser.add_argument("--quiet-load", type=float, default=0, help="first wait for a 1-min load average below this")
    parser.add_argument("--quiet-wait", type=float, default=900, help="wait at most this many seconds for it")
    parser.add_argument("--logs", default="", help="copy the web processes' logs into this folder")
    parser.add_argument("--idle", type=int, default=0, help="hold this many idle participants on one process instead")
    args = parser.parse_args()
    if args.idle:
        idle(args)
    else:
        load(args)


if __name__ == "__main__":
    main()
