"""Waiting, boundedly, for what another thread or process does.

A test that drives a worker in another thread or process has nothing to join: it polls for
the effect. :func:`wait_until` is the one way the suite does that. Its timeout bounds how long
a broken system may hang the run; it is never a measurement, and no test asserts on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | bool | None],
    *,
    what: str,
    timeout_s: float = 60.0,
    interval_s: float = 0.05,
    diagnose: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    After ``timeout_s`` seconds fail with an ``AssertionError`` naming ``what`` was awaited,
    the condition's last value and ``diagnose()``'s text (a worker's log tail, the counts
    seen so far)::

        wait_until(lambda: sink.count() == 3, what="3 emails", diagnose=worker.log_tail)

    An exception from ``condition`` counts as "not yet" (a service the test restarts may
    refuse connections for a moment) and is reported, chained, on timeout; an
    ``AssertionError`` from it fails at once: it is how a condition says the wait is over
    (for example, the process that should have done the work has exited).
    """
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = condition()
        except AssertionError:
            raise
        except Exception as exc:
            last = exc
        else:
            if last:
                return last  # type: ignore[no-any-return]
        if time.monotonic() >= deadline:
            detail = diagnose() if diagnose is not None else ""
            message = f"timed out after {timeout_s:g} s waiting for {what} (last: {last!r})"
            if detail:
                message = f"{message}\n{detail}"
            raise AssertionError(message) from (last if isinstance(last, Exception) else None)
        time.sleep(interval_s)
