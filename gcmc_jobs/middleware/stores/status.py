"""Message status records: the last known state of each message, kept for a TTL.

A record is a small hash per message id (:func:`gcmc_jobs.redis_keys.status_key`): its
``state``, ``actor``, ``queue``, ``attempts``, the times (epoch ms) and the last error's type
and short, redacted text. It never holds a message's arguments or options (where secrets such
as a password reset link travel).

Every write carries a *sequence number* (the attempt and the phase within it, see
:func:`sequence`) and is applied only when it is not older than the record's: a sender's
``enqueued`` that reaches Redis after a worker's ``running`` (a fast worker) is dropped instead
of turning the answer back. Each write is one round trip (one Lua call: compare, ``HSET``,
``PEXPIRE``).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gcmc_jobs.redis_keys import status_key
from gcmc_jobs.redis_scripts import ScriptRunner

__all__ = ["PHASES", "RedisStatusStore", "StatusStore", "StubStatusStore", "sequence"]

#: The phase of each state within one attempt: a write never replaces a later one. The
#: ``retrying`` of attempt n sorts after its ``running`` and before attempt n + 1's.
PHASES = {
    "enqueued": 0,
    "delayed": 0,
    "running": 2,
    "succeeded": 3,
    "failed": 3,
    "dead_lettered": 3,
    "retrying": 4,
    # An operator took the waiting message out of its queue (gcmc-jobs messages cancel):
    # after anything recorded of the attempt it was waiting for.
    "cancelled": 9,
}


def sequence(state: str, attempt: int, *, redelivered: bool = False) -> int:
    """The ordering number of ``state`` in ``attempt`` (1-based). ``redelivered``: a message a
    middleware put back with a delay (rate limit, pause) before it ran, phase 1."""
    phase = 1 if redelivered else PHASES[state]
    return attempt * 10 + phase


class StatusStore(ABC):
    """Where status records live. Every method is one atomic operation."""

    @abstractmethod
    def record(
        self, message_id: str, seq: int, fields: Mapping[str, str | int], ttl_ms: int
    ) -> bool:
        """Merge ``fields`` into the record of ``message_id`` unless it holds a later
        sequence number than ``seq``, and make it expire ``ttl_ms`` from now; True when
        applied. A value ``""`` clears the field."""

    def record_many(
        self, records: Sequence[tuple[str, int, Mapping[str, str | int]]], ttl_ms: int
    ) -> None:
        """:meth:`record` many ``(message_id, seq, fields)`` at once (one round trip)."""
        for message_id, seq, fields in records:
            self.record(message_id, seq, fields, ttl_ms)

    def record_each(
        self,
        message_ids: Sequence[str],
        seq: int,
        fields: Mapping[str, str | int],
        name: str,
        values: Sequence[str | int],
        ttl_ms: int,
    ) -> None:
        """:meth:`record` ``{**fields, name: values[i]}`` for each ``message_ids[i]``, all at
        ``seq`` (a bulk enqueue's chunk: the fields its messages share, and each one's own
        ``enqueued_at``), at once."""
        if len(values) != len(message_ids):
            raise ValueError("record_each needs one value per message id")
        for message_id, value in zip(message_ids, values, strict=True):
            self.record(message_id, seq, {**fields, name: value}, ttl_ms)

    @abstractmethod
    def get(self, message_id: str) -> dict[str, str] | None:
        """The record of ``message_id`` (fields as strings, cleared ones left out), or None
        when there is none (never recorded, or expired)."""

    def close(self) -> None:  # noqa: B027 (a no-op by default: stubs hold no connection)
        """Release what the store holds (connections); the default holds nothing."""


# KEYS[1]: the record; ARGV: ttl_ms, seq, then field/value pairs.
_RECORD = """
local current = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1')
if tonumber(ARGV[2]) < current then return 0 end
redis.call('HSET', KEYS[1], 'seq', ARGV[2], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""


# KEYS: the records; ARGV: ttl_ms, then per record one string: its seq and its field/value
# pairs, joined by the unit separator (byte 31): the call carries one argument per record
# instead of two per field (bulk enqueue writes a thousand records in one call). A pair whose
# name is empty, ('', s), marks the start of fields written only when s is not older than the
# record's seq was before this call: the earlier writes of a message merged into its last one
# (RedisStatusStore.record_many). The string is cut with plain string.find (a pattern's
# string.gmatch cost Redis about 1 µs more a record, of ~7).
_RECORD_MANY = """
local applied = 0
local find, sub = string.find, string.sub
for k, key in ipairs(KEYS) do
  local packed = ARGV[k + 1]
  local cut = find(packed, '\\31', 1, true)
  local seq = cut and sub(packed, 1, cut - 1) or packed
  local current = tonumber(redis.call('HGET', key, 'seq') or '-1')
  if tonumber(seq) >= current then
    local args = {'seq', seq}
    local n = 2
    local on = true
    while cut do
      local after_name = find(packed, '\\31', cut + 1, true)
      local name = sub(packed, cut + 1, after_name - 1)
      cut = find(packed, '\\31', after_name + 1, true)
      local value = sub(packed, after_name + 1, cut and cut - 1)
      if name == '' then
        on = tonumber(value) >= current
      elseif on then
        args[n + 1] = name
        args[n + 2] = value
        n = n + 2
      end
    end
    redis.call('HSET', key, unpack(args))
    redis.call('PEXPIRE', key, ARGV[1])
    applied = applied + 1
  end
end
return applied
"""

# KEYS: the records; ARGV: ttl_ms, seq, the shared field/value pairs joined by the unit
# separator, the name of the field each record has its own value of, then those values (one
# per key): per record one argument, the shared fields parsed once (bulk enqueue).
_RECORD_EACH = """
local base = {'seq', ARGV[2]}
for part in string.gmatch(ARGV[3] .. '\\31', '([^\\31]*)\\31') do
  base[#base + 1] = part
end
local n = #base
base[n + 1] = ARGV[4]
local seq = tonumber(ARGV[2])
local applied = 0
for k, key in ipairs(KEYS) do
  local current = tonumber(redis.call('HGET', key, 'seq') or '-1')
  if seq >= current then
    base[n + 2] = ARGV[4 + k]
    redis.call('HSET', key, unpack(base))
    redis.call('PEXPIRE', key, ARGV[1])
    applied = applied + 1
  end
end
return applied
"""

#: Joins a record's fields for ``_RECORD_MANY`` (never inside a value: replaced by a space).
_SEPARATOR = "\x1f"


def _packed(fields: Mapping[str, str | int]) -> str:
    # Per record a worker writes (two a message): plain loop, no replace() unless needed.
    parts: list[str] = []
    for name, value in fields.items():
        text = value if isinstance(value, str) else str(value)
        if _SEPARATOR in text:
            text = text.replace(_SEPARATOR, " ")
        parts.append(name)
        parts.append(text)
    return _SEPARATOR.join(parts)


def _merged(
    records: Sequence[tuple[str, int, Mapping[str, str | int]]],
) -> tuple[
    dict[str, tuple[str, int, Mapping[str, str | int]]],
    dict[str, list[tuple[str, int, Mapping[str, str | int]]]],
]:
    """The writes of ``records`` per message id, merged so that one conditional write gives
    exactly the record the writes in order would.

    Written in order, a write is applied when its seq is not older than the record's, and an
    applied write sets the record's seq to its own. So once a write of a message has been
    tried, the record's seq is at least the write's: a later write with an older seq than an
    earlier one in the batch is never applied (dropped here), and the writes left have
    non-decreasing seqs s1 <= ... <= sn. Of those, write i is applied exactly when si is not
    older than the record's seq *before the batch* (c): if none before it was applied the
    record's seq is still c; if one was, it was sj >= c and si >= sj. The writes applied are
    therefore those with si >= c, in order; the record ends with their fields (a later one's
    value winning) and the last one's seq, or untouched when sn < c. The merged write holds
    sn and the fields written at sn, applied when sn >= c (the same test), then for each
    earlier seq s the fields only writes at s set (not overwritten later), applied when
    s >= c: the same fields and values, the same seq, the same expiry.

    Returns, per message id, its last write (the fields of writes at the same seq merged, a
    later value winning), and for the message ids that have them, the earlier writes kept, in
    ascending seq order. Allocates little: it runs on every batch (a container allocated a
    record costs the worker garbage-collector passes).
    """
    last: dict[str, tuple[str, int, Mapping[str, str | int]]] = {}
    earlier: dict[str, list[tuple[str, int, Mapping[str, str | int]]]] = {}
    for record in records:
        message_id, seq, fields = record
        if "" in fields:
            raise ValueError("a status field name must not be empty")
        found = last.get(message_id)
        if found is None:
            last[message_id] = record
        elif seq > found[1]:
            kept = earlier.get(message_id)
            if kept is None:
                earlier[message_id] = [found]
            else:
                kept.append(found)
            last[message_id] = record
        elif seq == found[1]:
            last[message_id] = (message_id, seq, {**found[2], **fields})
        # else: older than a write before it: never applied
    return last, earlier


def _earlier_packed(
    last: Mapping[str, str | int], earlier: list[tuple[str, int, Mapping[str, str | int]]]
) -> str:
    """``earlier``'s fields that no later write sets, each seq's behind its marker pair
    (``''``, seq), for ``_RECORD_MANY`` (to append to the packed last write)."""
    text = ""
    later = last  # the names a later write sets
    for _, seq, fields in reversed(earlier):
        own = {name: value for name, value in fields.items() if name not in later}
        if own:
            text += f"{_SEPARATOR}{_SEPARATOR}{seq}{_SEPARATOR}{_packed(own)}"
        if len(earlier) > 1:
            later = {**later, **fields}
    return text


class RedisStatusStore(StatusStore):
    """Records in Redis hashes, each write (or batch of writes) one Lua call on a per-thread
    connection (:class:`~gcmc_jobs.redis_scripts.ScriptRunner`).

    ``client`` is a ``redis.Redis``; ``namespace`` prefixes every key.
    """

    def __init__(self, client: Any, *, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self._record = ScriptRunner(client, client.register_script(_RECORD))
        self._record_many = ScriptRunner(client, client.register_script(_RECORD_MANY))
        self._record_each = ScriptRunner(client, client.register_script(_RECORD_EACH))

    def record(
        self, message_id: str, seq: int, fields: Mapping[str, str | int], ttl_ms: int
    ) -> bool:
        args: list[str | int] = [int(ttl_ms), int(seq)]
        for name, value in fields.items():
            args += [name, value]
        return bool(self._record([status_key(self.namespace, message_id)], args))

    def record_many(
        self, records: Sequence[tuple[str, int, Mapping[str, str | int]]], ttl_ms: int
    ) -> None:
        """:meth:`record` each of ``records`` in order, in one Lua call, the writes of one
        message merged into one (:func:`_merged`): a worker's ``running`` and the ``retrying``
        or ``failed`` after it are often in the same batch (its ``succeeded`` most often
        takes the place of its ``running`` before: ``StatusTracking``). A field name must not
        be empty."""
        if not records:
            return
        namespace = self.namespace
        keys: list[str] = []
        args: list[str | int] = [int(ttl_ms)]
        last, earlier = _merged(records)
        for message_id, seq, fields in last.values():
            keys.append(status_key(namespace, message_id))
            text = f"{int(seq)}{_SEPARATOR}{_packed(fields)}" if fields else str(int(seq))
            if earlier:
                kept = earlier.get(message_id)
                if kept is not None:
                    text += _earlier_packed(fields, kept)
            args.append(text)
        self._record_many(keys, args)

    def record_each(
        self,
        message_ids: Sequence[str],
        seq: int,
        fields: Mapping[str, str | int],
        name: str,
        values: Sequence[str | int],
        ttl_ms: int,
    ) -> None:
        if message_ids:
            self._record_each(*self._each(message_ids, seq, fields, name, values, ttl_ms))

    #: The Lua script :meth:`record_each_command` calls by its SHA1 (the caller loads it).
    record_each_script = _RECORD_EACH

    def record_each_command(
        self,
        message_ids: Sequence[str],
        seq: int,
        fields: Mapping[str, str | int],
        name: str,
        values: Sequence[str | int],
        ttl_ms: int,
    ) -> tuple[str | int, ...]:
        """:meth:`record_each` as the arguments of one ``EVALSHA`` of
        :attr:`record_each_script`, to run in a transaction on this store's Redis once the
        script is loaded (:func:`gcmc_jobs.brokers.bulk.enqueue_many` writes a chunk's
        records in its ``MULTI``, and loads the script once per call ahead of it: a
        ``NOSCRIPT`` cannot be recovered inside the transaction)."""
        keys, args = self._each(message_ids, seq, fields, name, values, ttl_ms)
        return ("EVALSHA", self._record_each.script.sha, len(keys), *keys, *args)

    def _each(
        self,
        message_ids: Sequence[str],
        seq: int,
        fields: Mapping[str, str | int],
        name: str,
        values: Sequence[str | int],
        ttl_ms: int,
    ) -> tuple[list[str], list[str | int]]:
        if len(values) != len(message_ids):
            raise ValueError("record_each needs one value per message id")
        namespace = self.namespace
        keys = [status_key(namespace, message_id) for message_id in message_ids]
        args: list[str | int] = [int(ttl_ms), int(seq), _packed(fields), name, *values]
        return keys, args

    def get(self, message_id: str) -> dict[str, str] | None:
        found = self.client.hgetall(status_key(self.namespace, message_id))
        if not found:
            return None
        record = {_text(k): _text(v) for k, v in found.items()}
        return {k: v for k, v in record.items() if v != ""}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class StubStatusStore(StatusStore):
    """Records in a dict of this process (the stub broker, tests, the demo). ``clock``
    returns seconds. :attr:`history` keeps, per message id, every state applied, in order:
    what a test asserts a message went through."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.records: dict[str, tuple[dict[str, str], float]] = {}  # id -> (fields, expires)
        self.history: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def record(
        self, message_id: str, seq: int, fields: Mapping[str, str | int], ttl_ms: int
    ) -> bool:
        with self._lock:
            current = self._live(message_id)
            record = dict(current or {})
            if int(record.get("seq", -1)) > seq:
                return False
            record.update({k: str(v) for k, v in fields.items()}, seq=str(seq))
            self.records[message_id] = (record, self.clock() + ttl_ms / 1000)
            if "state" in fields:
                self.history.setdefault(message_id, []).append(str(fields["state"]))
            return True

    def get(self, message_id: str) -> dict[str, str] | None:
        with self._lock:
            record = self._live(message_id)
            return None if record is None else {k: v for k, v in record.items() if v != ""}

    def _live(self, message_id: str) -> dict[str, str] | None:
        found = self.records.get(message_id)
        if found is not None and found[1] <= self.clock():
            del self.records[message_id]
            return None
        return None if found is None else found[0]
