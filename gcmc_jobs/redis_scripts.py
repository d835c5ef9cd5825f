"""Run a registered Lua script on a per-thread Redis connection, skipping redis-py's
per-command machinery, for the scripts a worker runs on every message.

redis-py's ``Script.__call__`` checks a connection out of the pool, tests it for stale data
(a ``settimeout``/``recv``/``settimeout`` round of syscalls), wraps the call in its retry
helper, then checks it back in: measured here at 114-163 µs of client CPU a call, against
56-77 µs for ``EVALSHA`` sent straight on a connection the thread keeps (5,000 calls).
On a connection error, a timeout or ``NOSCRIPT`` (Redis restarted, ``SCRIPT FLUSH``) the
held connection is dropped and the call goes through ``Script.__call__``, which loads the
script and retries exactly as redis-py always does (a retry after a timeout may run the
script twice, as redis-py's own retry would).

The command is packed here (:func:`pack_command`), not by redis-py's serializer, which
encodes argument by argument in Python (~4 µs each here): a bulk enqueue's status records
are one call of a thousand and more arguments.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["ACK_MANY_LUA", "PROVIDER_RATE_SCRIPT", "ScriptRunner", "pack_command"]

#: Acknowledge many messages of one queue fetched by one worker, as Dramatiq's ``dispatch``
#: script acknowledges one (``ack``: taken out of the worker's unacknowledged set, then its
#: body deleted), and refresh the worker's heartbeat as every ``dispatch`` call does.
#: KEYS: heartbeats zset, the worker's acks set of the queue, the queue's messages hash
#: (:mod:`gcmc_jobs.redis_keys`). ARGV: now (ms), worker (broker) id, then the Redis message
#: ids. Returns how many were still unacknowledged.
ACK_MANY_LUA = """
redis.call("zadd", KEYS[1], ARGV[1], ARGV[2])
local done = 0
for i = 3, #ARGV do
    if redis.call("srem", KEYS[2], ARGV[i]) > 0 then
        redis.call("hdel", KEYS[3], ARGV[i])
        done = done + 1
    end
end
return done
"""


def _encoded(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    if isinstance(value, float):
        return repr(value).encode()
    raise TypeError(f"a Redis argument must be bytes, str, int or float, not {type(value)}")


def pack_command(*args: Any) -> bytes:
    """``args`` as one RESP command (an array of bulk strings), encoded as redis-py's
    default encoder does (str as UTF-8, int and float by their text)."""
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for arg in args:
        # bytes, str and int inline: a bulk enqueue packs 3 arguments a message, a fetched
        # batch's rate-limit booking 2 integers a message
        kind = type(arg)
        if kind is bytes:
            data = arg
        elif kind is str:
            data = arg.encode()
        elif kind is int:
            data = b"%d" % arg
        else:
            data = _encoded(arg)
        append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class ScriptRunner:
    """Runs ``script`` (a ``redis.commands.core.Script`` of ``client``) as described above.

    Each thread gets its own connection, built from the client pool's settings but outside
    the pool, on first use; it is closed when the thread ends (garbage collected) and never
    used in another process after a fork.
    """

    def __init__(self, client: Any, script: Any) -> None:
        self.client = client
        self.script = script
        self._local = threading.local()

    def connection(self) -> Any:
        """This thread's own connection (made on first use)."""
        held = getattr(self._local, "connection", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        pool = self.client.connection_pool
        connection = pool.connection_class(**pool.connection_kwargs)
        # Connected here, by the class's own connect(): a Sentinel-managed connection asks
        # the Sentinels for the primary there (gcmc_jobs.redis_urls); redis-py's own
        # SentinelManagedConnection, sent a command unconnected, would go to its default
        # host and port (localhost:6379).
        connection.connect()
        self._local.connection = (os.getpid(), connection)
        return connection

    def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            connection = self.connection()
            packed = pack_command("EVALSHA", self.script.sha, len(keys), *keys, *args)
            connection.send_packed_command([packed])
            return connection.read_response()
        except (RedisConnectionError, RedisTimeoutError, NoScriptError):
            held = getattr(self._local, "connection", None)
            self._local.connection = None
            if held is not None:
                held[1].disconnect()
            return self.script(keys=list(keys), args=list(args))


#: The provider-wide send rate's token bucket
#: (:class:`~gcmc_jobs.middleware.stores.provider_rate.RedisTokenBucket`): one call per
#: email, atomic, so every worker of the deployment shares one budget.
#:
#: KEYS[1]: the bucket hash (:func:`gcmc_jobs.redis_keys.provider_rate_key`). ARGV: now (ms),
#: rate (tokens per second, may be fractional), burst (the bucket's size), floor (tokens a
#: taker must leave in the bucket: 0 for critical mail, the reserved share for the rest),
#: waited (1 when this message was deferred before, so it leaves the waiting line).
#: Returns 0 (a token was taken: send now) or the wait in ms before trying again. A refused
#: non-critical taker joins the waiting line (``waiting``) and its wait counts the takers
#: ahead of it, so a deferred backlog comes back spread out at the rate rather than all at
#: once. The hash expires once a full bucket would have refilled (idle: full again).
PROVIDER_RATE_SCRIPT = """
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local floor = tonumber(ARGV[4])
local waited = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'waiting')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
local waiting = tonumber(state[3]) or 0
if waited == 1 and waiting > 0 then waiting = waiting - 1 end
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end
if now < ts then now = ts end
local wait = 0
if tokens - 1 >= floor then
  tokens = tokens - 1
elseif floor > 0 then
  waiting = waiting + 1
  wait = math.ceil((floor + waiting - tokens) * 1000 / rate)
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now, 'waiting', waiting)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst + waiting) * 1000 / rate) + 60000)
return wait
"""
