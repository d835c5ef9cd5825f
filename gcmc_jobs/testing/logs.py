"""Capturing structlog events in a test, after the processors production uses."""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

from gcmc_jobs.redaction import redact_event

__all__ = ["capture_events"]


@contextmanager
def capture_events() -> Iterator[list[MutableMapping[str, Any]]]:
    """Capture every structlog event, as dicts, after the same processors as production
    (context merged, secrets redacted) — unlike ``structlog.testing.capture_logs``, which
    bypasses them. Thread-safe; restores the previous configuration on exit::

        with capture_events() as events:
            ...
        assert [e["event"] for e in events] == ["enqueued", "started", "succeeded"]
    """
    captured = structlog.testing.LogCapture()
    previous = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            redact_event,
            captured,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        yield captured.entries
    finally:
        structlog.configure(**previous)
