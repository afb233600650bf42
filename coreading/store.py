"""The rooms' shared, fast-changing state: one authority for every server process.

Per room: the sequence counter and its epoch, the replay log of recent
sequenced messages, the leader, the leader's last viewport, presence (one
entry per connection, refreshed by heartbeats) and the client message ids seen
lately. In production this is Redis (every ASGI process on every machine sees
the same counter: the one ordering authority); in the embedded mode, process
memory (there is only one process).

Each operation on the hot path is one round trip: numbering a viewport,
checking its sender leads, remembering its id and appending it to the log is
one Lua script. Counters are seeded from the database (the highest sequence
number stored with an annotation or chat message) when they are missing, i.e.
after Redis restarted or lost the keys; the epoch changes then, so clients
know their numbers are from before and ask for a snapshot.

Store errors (Redis unreachable) raise :class:`StoreUnavailable`; the
consumer closes its sockets with 4503 and clients reconnect.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

Seed = Callable[[], Awaitable[int]]

OK = "ok"
DUPLICATE = "duplicate"
NOT_LEADER = "not_leader"
NOT_FOUND = "not_found"


class StoreUnavailable(Exception):
    """The shared store cannot be reached just now."""


@dataclass(frozen=True)
class Numbered:
    status: str  # OK, DUPLICATE or NOT_LEADER
    seq: int | None  # the new number; for DUPLICATE the original's (None when it had none)


@dataclass(frozen=True)
class RoomState:
    epoch: str
    seq: int
    leader: str | None
    viewport_message: str | None  # the last viewport message as sent (JSON text)
    presence: dict[str, dict[str, Any]]  # conn → participant


@dataclass(frozen=True)
class Replay:
    epoch: str
    seq: int
    messages: list[str] | None  # None: cannot be served from the log (send a snapshot)


def now_ms() -> int:
    return int(time.time() * 1000)


def new_epoch() -> str:
    return secrets.token_urlsafe(6)


def _live(entry: dict[str, Any], now: int) -> bool:
    return int(entry.get("seen", 0)) > now - settings.COREADING_PRESENCE_TTL * 1000


def _successor(presence: dict[str, dict[str, Any]], leaving: str, now: int) -> str | None:
    """The longest-present live connection other than *leaving*."""
    candidates = [(entry.get("joined_at", 0), conn) for conn, entry in presence.items() if conn != leaving]
    candidates = [(joined, conn) for joined, conn in candidates if _live(presence[conn], now)]
    return min(candidates)[1] if candidates else None


# --- Redis ----------------------------------------------------------------------------------

# KEYS: seq, epoch, log, viewport, leader, id
# ARGV: rest (message text without "{", "" = only allocate), log_max, ttl, seed ("" = unknown),
#       new_epoch, required leader ("" = none), id ttl ("0" = no id), is_viewport ("1"/"0")
_SEQUENCE = """
if ARGV[7] ~= '0' then
  local previous = redis.call('GET', KEYS[6])
  if previous then return {-3, previous} end
end
if ARGV[6] ~= '' and redis.call('GET', KEYS[5]) ~= ARGV[6] then return {-1, ''} end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[4] == '' then return {-2, ''} end
  redis.call('SET', KEYS[1], ARGV[4])
  redis.call('SET', KEYS[2], ARGV[5])
end
local seq = redis.call('INCR', KEYS[1])
local ttl = tonumber(ARGV[3])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
if ARGV[1] ~= '' then
  local text = '{"seq":' .. seq .. ',' .. ARGV[1]
  redis.call('ZADD', KEYS[3], seq, text)
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[2]) + 1))
  redis.call('EXPIRE', KEYS[3], ttl)
  if ARGV[8] == '1' then redis.call('SET', KEYS[4], text, 'EX', ttl) end
end
if ARGV[7] ~= '0' then redis.call('SET', KEYS[6], seq, 'EX', tonumber(ARGV[7])) end
return {seq, ''}
"""

# KEYS: leader, presence. ARGV: conn, now, ttl_ms, room ttl. Claim the lead when nobody live holds it.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current then
  local entry = redis.call('HGET', KEYS[2], current)
  if entry and cjson.decode(entry)['seen'] > tonumber(ARGV[2]) - tonumber(ARGV[3]) then return {current, current} end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[4]))
return {ARGV[1], current or ''}
"""

# KEYS: leader, presence. ARGV: from, to. Hand the lead from *from* to *to* (present).
_GRANT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'not_leader' end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 'not_found' end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 'ok'
"""

# KEYS: leader, presence. ARGV: leaving conn, successor ("" = none). Only if *leaving* leads.
_HAND_OVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') end
return 1
"""


# Connections to the store per process, and how long a command waits for one when all are busy.
POOL_SIZE = 50
POOL_WAIT_SECONDS = 10


class RedisStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: dict[int, Any] = {}

    def _client(self) -> Any:
        # One connection pool per event loop: tests run each test in a loop of its own.
        from redis import asyncio as aioredis

        loop = asyncio.get_running_loop()
        client = self._clients.get(id(loop))
        if client is None:
            # A blocking pool: when every connection is busy (a process holding thousands of
            # connections, all joining or beating at once) a command waits for one instead of
            # failing with "Too many connections" (redis-py's default pool), which closed sockets
            # with 4503. The socket timeout is generous: under CPU load the event loop itself can
            # be late to read an answer that Redis sent long ago.
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url,
                max_connections=POOL_SIZE,
                timeout=POOL_WAIT_SECONDS,
                socket_timeout=5,
                socket_connect_timeout=2,
                health_check_interval=10,
                decode_responses=True,
            )
            client = aioredis.Redis(connection_pool=pool)
            self._clients = {id(loop): client}
        return client

    @staticmethod
    def _key(room: str, name: str) -> str:
        return f"coreading:room:{room}:{name}"

    async def _call(self, name: str, script: str, keys: list[str], args: list[Any]) -> Any:
        from redis.exceptions import NoScriptError, RedisError

        client = self._client()
        scripts = getattr(client, "_coreading_scripts", None)
        if scripts is None:
            scripts = {}
            client._coreading_scripts = scripts
        try:
            if name not in scripts:
                scripts[name] = await client.script_load(script)
            try:
                return await client.evalsha(scripts[name], len(keys), *keys, *args)
            except NoScriptError:  # Redis restarted and forgot it
                scripts[name] = await client.script_load(script)
                return await client.evalsha(scripts[name], len(keys), *keys, *args)
        except (RedisError, OSError) as error:
            raise StoreUnavailable(str(error)) from error

    async def _run(self, coroutine: Awaitable[Any]) -> Any:
        from redis.exceptions import RedisError

        try:
            return await coroutine
        except (RedisError, OSError) as error:
            raise StoreUnavailable(str(error)) from error

    async def sequence(
        self,
        room: str,
        *,
        seed: Seed,
        rest: str = "",
        viewport: bool = False,
        leader: str | None = None,
        dedupe: str | None = None,
    ) -> Numbered:
        k = self._key
        keys = [k(room, "seq"), k(room, "epoch"), k(room, "log"), k(room, "viewport"), k(room, "leader")]
        keys.append(k(room, f"id:{dedupe}") if dedupe else k(room, "id:-"))
        id_ttl = settings.COREADING_IDEMPOTENCY_SECONDS if dedupe else 0
        base = [rest, settings.COREADING_REPLAY_LOG, settings.COREADING_ROOM_TTL]
        tail = [new_epoch(), leader or "", id_ttl, "1" if viewport else "0"]
        result = await self._call("sequence", _SEQUENCE, keys, [*base, "", *tail])
        if int(result[0]) == -2:
            result = await self._call("sequence", _SEQUENCE, keys, [*base, await seed(), *tail])
        code = int(result[0])
        if code == -1:
            return Numbered(NOT_LEADER, None)
        if code == -3:
            return Numbered(DUPLICATE, int(result[1]) if result[1] else None)
        return Numbered(OK, code)

    async def log(self, room: str, seq: int, text: str) -> None:
        """Keep an already numbered message (numbered by ``sequence`` without *rest*)."""
        client = self._client()
        key = self._key(room, "log")
        async with client.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {text: seq})
            pipe.zremrangebyrank(key, 0, -(settings.COREADING_REPLAY_LOG + 1))
            pipe.expire(key, settings.COREADING_ROOM_TTL)
            await self._run(pipe.execute())

    async def state(self, room: str, *, seed: Seed) -> RoomState:
        client = self._client()
        k = self._key
        async with client.pipeline(transaction=False) as pipe:
            for name in ("seq", "epoch", "leader", "viewport"):
                pipe.get(k(room, name))
            pipe.hgetall(k(room, "presence"))
            seq, epoch, leader, viewport, presence = await self._run(pipe.execute())
        if seq is None or epoch is None:
            await self._seed(room, seed)
            return await self.state(room, seed=seed)
        return RoomState(
            epoch=epoch,
            seq=int(seq),
            leader=leader,
            viewport_message=viewport,
            presence={conn: json.loads(entry) for conn, entry in presence.items()},
        )

    async def _seed(self, room: str, seed: Seed) -> None:
        value = await seed()
        client = self._client()
        ttl = settings.COREADING_ROOM_TTL
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(self._key(room, "seq"), value, nx=True, ex=ttl)
            pipe.set(self._key(room, "epoch"), new_epoch(), nx=True, ex=ttl)
            await self._run(pipe.execute())

    async def replay(self, room: str, after: int, epoch: str) -> Replay:
        client = self._client()
        k = self._key
        async with client.pipeline(transaction=False) as pipe:
            pipe.get(k(room, "seq"))
            pipe.get(k(room, "epoch"))
            pipe.zrange(k(room, "log"), 0, 0, withscores=True)
            pipe.zrangebyscore(k(room, "log"), f"({after}", "+inf")
            seq, current_epoch, first, messages = await self._run(pipe.execute())
        if seq is None or current_epoch != epoch or after > int(seq):
            return Replay(current_epoch or "", int(seq or 0), None)
        if after < int(seq) and (not first or int(first[0][1]) > after + 1):
            return Replay(current_epoch, int(seq), None)
        return Replay(current_epoch, int(seq), list(messages))

    async def presence_set(self, room: str, conn: str, entry: dict[str, Any]) -> None:
        client = self._client()
        key = self._key(room, "presence")
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(key, conn, json.dumps(entry, ensure_ascii=False, separators=(",", ":")))
            pipe.expire(key, settings.COREADING_ROOM_TTL)
            await self._run(pipe.execute())

    async def presence_touch(self, room: str, conn: str, entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Refresh *conn*'s entry; the whole presence back (to find the expired). One round trip."""
        key = self._key(room, "presence")
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.hset(key, conn, json.dumps(entry, ensure_ascii=False, separators=(",", ":")))
            pipe.expire(key, settings.COREADING_ROOM_TTL)
            pipe.hgetall(key)
            _set, _expire, raw = await self._run(pipe.execute())
        return {c: json.loads(e) for c, e in raw.items()}

    async def presence_remove(self, room: str, conn: str) -> bool:
        """Remove *conn*; True only for the one caller that removed it (it announces the leave)."""
        return bool(await self._run(self._client().hdel(self._key(room, "presence"), conn)))

    async def presence(self, room: str) -> dict[str, dict[str, Any]]:
        raw = await self._run(self._client().hgetall(self._key(room, "presence")))
        return {c: json.loads(e) for c, e in raw.items()}

    async def claim_lead(self, room: str, conn: str) -> tuple[str, str | None]:
        """(leader, previous): *conn* leads unless someone live already does."""
        keys = [self._key(room, "leader"), self._key(room, "presence")]
        ttl_ms = settings.COREADING_PRESENCE_TTL * 1000
        args = [conn, now_ms(), ttl_ms, settings.COREADING_ROOM_TTL]
        leader, previous = await self._call("claim", _CLAIM, keys, args)
        return leader, previous or None

    async def grant_lead(self, room: str, holder: str, to: str) -> str:
        keys = [self._key(room, "leader"), self._key(room, "presence")]
        return str(await self._call("grant", _GRANT, keys, [holder, to]))

    async def pass_lead(self, room: str, leaving: str) -> tuple[bool, str | None]:
        """If *leaving* leads, hand the lead to the longest-present live connection: (changed, new leader)."""
        presence = await self.presence(room)
        successor = _successor(presence, leaving, now_ms())
        keys = [self._key(room, "leader"), self._key(room, "presence")]
        changed = await self._call("pass", _HAND_OVER, keys, [leaving, successor or ""])
        return bool(changed), successor

    async def leader(self, room: str) -> str | None:
        value = await self._run(self._client().get(self._key(room, "leader")))
        return str(value) if value is not None else None

    async def add_stat(self, name: str, amount: int) -> None:
        await self._run(self._client().hincrby("coreading:stats", name, amount))

    async def ping(self) -> None:
        await self._run(self._client().ping())


# --- Process memory (embedded mode: one process) ----------------------------------------------


class MemoryStore:
    """The same operations on dicts. Correct only within one process, which is the embedded mode."""

    def __init__(self) -> None:
        self.rooms: dict[str, dict[str, Any]] = {}
        self.stats: dict[str, int] = {}

    def _room(self, room: str) -> dict[str, Any]:
        return self.rooms.setdefault(room, {"seq": None, "epoch": None, "log": [], "ids": {}, "presence": {}})

    async def _ensure(self, data: dict[str, Any], seed: Seed) -> None:
        if data["seq"] is None:
            value = await seed()
            if data["seq"] is None:  # seeded meanwhile by another coroutine
                data["seq"], data["epoch"] = value, new_epoch()

    async def sequence(
        self,
        room: str,
        *,
        seed: Seed,
        rest: str = "",
        viewport: bool = False,
        leader: str | None = None,
        dedupe: str | None = None,
    ) -> Numbered:
        data = self._room(room)
        now = time.monotonic()
        if dedupe:
            seen = data["ids"].get(dedupe)
            if seen is not None and seen[1] > now:
                return Numbered(DUPLICATE, seen[0])
        if leader is not None and data.get("leader") != leader:
            return Numbered(NOT_LEADER, None)
        await self._ensure(data, seed)
        data["seq"] += 1
        seq: int = data["seq"]
        if rest:
            text = f'{{"seq":{seq},{rest}'
            self._append(data, seq, text)
            if viewport:
                data["viewport"] = text
        if dedupe:
            if len(data["ids"]) > 10_000:
                data["ids"] = {key: value for key, value in data["ids"].items() if value[1] > now}
            data["ids"][dedupe] = (seq, now + settings.COREADING_IDEMPOTENCY_SECONDS)
        return Numbered(OK, seq)

    @staticmethod
    def _append(data: dict[str, Any], seq: int, text: str) -> None:
        log: list[tuple[int, str]] = data["log"]
        log.append((seq, text))
        if len(log) > 1 and log[-2][0] > seq:
            log.sort()
        del log[: max(0, len(log) - settings.COREADING_REPLAY_LOG)]

    async def log(self, room: str, seq: int, text: str) -> None:
        self._append(self._room(room), seq, text)

    async def state(self, room: str, *, seed: Seed) -> RoomState:
        data = self._room(room)
        await self._ensure(data, seed)
        return RoomState(
            epoch=data["epoch"],
            seq=data["seq"],
            leader=data.get("leader"),
            viewport_message=data.get("viewport"),
            presence={conn: dict(entry) for conn, entry in data["presence"].items()},
        )

    async def replay(self, room: str, after: int, epoch: str) -> Replay:
        data = self._room(room)
        seq = data["seq"] or 0
        if data["epoch"] != epoch or after > seq:
            return Replay(data["epoch"] or "", seq, None)
        log: list[tuple[int, str]] = data["log"]
        if after < seq and (not log or log[0][0] > after + 1):
            return Replay(data["epoch"], seq, None)
        return Replay(data["epoch"], seq, [text for number, text in log if number > after])

    async def presence_set(self, room: str, conn: str, entry: dict[str, Any]) -> None:
        self._room(room)["presence"][conn] = dict(entry)

    async def presence_touch(self, room: str, conn: str, entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
        await self.presence_set(room, conn, entry)
        return await self.presence(room)

    async def presence_remove(self, room: str, conn: str) -> bool:
        return self._room(room)["presence"].pop(conn, None) is not None

    async def presence(self, room: str) -> dict[str, dict[str, Any]]:
        return {conn: dict(entry) for conn, entry in self._room(room)["presence"].items()}

    async def claim_lead(self, room: str, conn: str) -> tuple[str, str | None]:
        data = self._room(room)
        current = data.get("leader")
        entry = data["presence"].get(current) if current else None
        if current and entry and _live(entry, now_ms()):
            return current, current
        data["leader"] = conn
        return conn, current

    async def grant_lead(self, room: str, holder: str, to: str) -> str:
        data = self._room(room)
        if data.get("leader") != holder:
            return NOT_LEADER
        if to not in data["presence"]:
            return NOT_FOUND
        data["leader"] = to
        return OK

    async def pass_lead(self, room: str, leaving: str) -> tuple[bool, str | None]:
        data = self._room(room)
        if data.get("leader") != leaving:
            return False, None
        successor = _successor(data["presence"], leaving, now_ms())
        data["leader"] = successor
        return True, successor

    async def leader(self, room: str) -> str | None:
        value = self._room(room).get("leader")
        return str(value) if value else None

    async def add_stat(self, name: str, amount: int) -> None:
        self.stats[name] = self.stats.get(name, 0) + amount

    async def ping(self) -> None:
        return None


Store = RedisStore | MemoryStore
_store: Store | None = None


def get_store() -> Store:
    """The process's store: Redis when COREADING_REDIS_URL is set, else memory."""
    global _store
    if _store is None:
        url = settings.COREADING_REDIS_URL
        _store = RedisStore(url) if url else MemoryStore()
    return _store


def reset_store() -> None:
    """Forget the store (tests that change COREADING_REDIS_URL)."""
    global _store
    _store = None
