"""Loaded (as ``_hook_timer``) by ``benchmarks/hook_costs.py``'s worker, after
``benchmarks._worker_overhead_app``: wraps each middleware hook the broker emits in a timer
of the calling thread's CPU time.

Every hook gets ``(thread CPU ns, calls)`` per ``<signal>:<middleware class>``, counted per
thread (no lock), summed and written as JSON to ``BENCH_HOOK_TIMES`` every half second (the
benchmark reads the last file once the queue is drained). Only gcmc-jobs' ``RedisBroker``
can be timed: its emits get their hooks from ``_hooks`` (which this wraps: a timed hook keeps
its middleware as ``__self__``, so the per-message selection still asks its predicate), or,
in a checkout before that method, from ``_cache_hooks`` (which this replaces).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq

_tables: list[dict[str, list[int]]] = []
_local = threading.local()


def _table() -> dict[str, list[int]]:
    try:
        table: dict[str, list[int]] = _local.table
    except AttributeError:
        table = _local.table = {}
        _tables.append(table)
    return table


def timed(name: str, hook: Callable[..., Any]) -> Callable[..., Any]:
    """``hook`` adding its calling thread's CPU time and one call to ``name``'s entry."""
    clock = time.thread_time_ns

    def timed_hook(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return hook(*args, **kwargs)
        finally:
            spent = clock() - started
            table = _table()
            entry = table.get(name)
            if entry is None:
                table[name] = [spent, 1]
            else:
                entry[0] += spent
                entry[1] += 1

    timed_hook.__self__ = getattr(hook, "__self__", None)  # type: ignore[attr-defined]
    return timed_hook


def totals() -> dict[str, list[int]]:
    """Every hook's ``[ns, calls]`` summed over the threads."""
    summed: dict[str, list[int]] = {}
    for table in list(_tables):
        for name, (spent, calls) in list(table.items()):
            entry = summed.setdefault(name, [0, 0])
            entry[0] += spent
            entry[1] += calls
    return summed


def _name(prefix: str, hook: Any) -> str:
    return prefix + type(getattr(hook, "__self__", hook)).__name__


def install(broker: Any) -> None:
    """Time every hook ``broker`` emits from now on."""
    if hasattr(broker, "_hooks"):
        listed = broker._hooks

        def hooks_timed(name: str) -> tuple[Any, ...]:
            return tuple(timed(_name(name + ":", hook), hook) for hook in listed(name))

        broker._hooks = hooks_timed
        broker.forget_hooks()
        return
    cache = broker._cache_hooks

    def cache_timed(signal: str, *, after: bool) -> tuple[Any, ...]:
        prefix = ("after_" if after else "before_") + signal + ":"
        hooks = tuple(timed(_name(prefix, hook), hook) for hook in cache(signal, after=after))
        (broker._after_hooks if after else broker._before_hooks)[signal] = hooks
        return hooks

    broker._cache_hooks = cache_timed
    broker._forget_hooks()


def _write(path: str) -> None:
    while True:
        time.sleep(0.5)
        partial = f"{path}.{os.getpid()}.part"
        with open(partial, "w") as out:
            json.dump(totals(), out)
        os.replace(partial, path)


if os.environ.get("BENCH_HOOK_TIMES"):
    install(dramatiq.get_broker())
    threading.Thread(target=_write, args=(os.environ["BENCH_HOOK_TIMES"],), daemon=True).start()
