"""Logging configuration for entry points, the redaction processor, and a test helper.

Library code only calls ``structlog.get_logger(...)``. :func:`configure_logging` is called by
entry points alone (``gcmc_jobs.worker`` and the ``gcmc-jobs`` command), never on import; a
host application that configures structlog itself should add :func:`redact_event` to its
processors.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO, cast

import structlog

from gcmc_jobs.redaction import MASK, is_secret_key, redact, redact_text
from gcmc_jobs.settings import Settings

__all__ = [
    "BufferedLineLogger",
    "capture_events",
    "configure_logging",
    "processors",
    "redact_event",
]


_PLAIN = frozenset({int, float, bool})


def redact_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """A structlog processor masking secrets in every field (see :mod:`gcmc_jobs.redaction`).

    Keys naming a secret (``token``, ``password``, ``reset_link``, …) are masked whole;
    strings lose URL credentials, secret query parameters and reset-link tokens;
    ``SecretStr`` values are masked. Returns the event dict, masked in place.
    """
    # Runs on every event of every message, so the flat fields events are made of are
    # handled inline (the same rules as :func:`~gcmc_jobs.redaction.redact`): a string
    # without "://", "=" or " " holds none of the patterns redact_text masks, so the regexes
    # are skipped for it; anything else goes through redact(). structlog hands each event
    # a fresh dict, so masking in place (no copy) is safe.
    for key, value in event_dict.items():
        if value is None:
            continue
        if is_secret_key(key):
            event_dict[key] = MASK
            continue
        cls = value.__class__
        if cls is str:
            if "://" in value or "=" in value or " " in value:
                event_dict[key] = redact_text(value)
        elif cls not in _PLAIN:
            event_dict[key] = redact(value)
    return event_dict


class _UtcTimestamp:
    """``timestamp``: the UTC time in ISO 8601 with microseconds, ``2026-11-29T12:00:00.000123Z``.

    What ``structlog.processors.TimeStamper(fmt="iso", utc=True)`` writes (except that the
    microseconds are always present), for a third of its cost: the date and time to the
    second are formatted once per second and cached, the microseconds appended per event.
    """

    def __init__(self) -> None:
        # (second, its formatted prefix) in one tuple, so threads never pair a second
        # with another second's prefix.
        self._cached: tuple[int, str] = (-1, "")

    def __call__(self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
        now = time.time()
        second = int(now)
        cached = self._cached
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._cached = cached
        event_dict["timestamp"] = f"{cached[1]}.{int((now - second) * 1_000_000):06d}Z"
        return event_dict


def processors() -> list[Any]:
    """The processors before the renderer: context, level, UTC timestamp, redaction."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _UtcTimestamp(),
        structlog.processors.format_exc_info,
        redact_event,
    ]


#: One encoder for every line: ``json.dumps(..., default=str)`` builds a new JSONEncoder
#: per call (its cached default encoder only serves calls without options).
_ENCODER = json.JSONEncoder(default=str)


def _render_json(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
    """The event as one JSON object, exactly as ``JSONRenderer(default=str)`` writes it."""
    return _ENCODER.encode(event_dict)


class BufferedLineLogger:
    """A structlog logger writing rendered lines to ``stream`` in batches.

    Lines below WARNING wait up to ``buffer_ms`` (a daemon thread writes them in one call);
    a WARNING or worse is written at once with everything before it, and the buffer is
    written at exit. Under ``dramatiq`` every ``write`` of a worker process is one message on
    a pipe that the parent process reads, decodes and flushes line by line: batching them
    keeps per-message events from costing the worker more than the message itself.
    """

    def __init__(self, stream: TextIO, *, buffer_ms: int) -> None:
        self.stream = stream
        self.buffer_ms = buffer_ms
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        atexit.register(self.flush)

    def _buffer(self, message: str) -> None:
        with self._lock:
            self._lines.append(message + "\n")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="gcmc-jobs-log-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.buffer_ms / 1000)
            self.flush()

    def flush(self) -> None:
        """Write every buffered line now, in one call."""
        with self._lock:
            lines, self._lines = self._lines, []
            if lines:
                self.stream.write("".join(lines))
                self.stream.flush()

    def _now(self, message: str) -> None:
        self._buffer(message)
        self.flush()

    debug = info = msg = log = _buffer
    warning = warn = error = err = critical = fatal = exception = failure = _now


class _CurrentStderr:
    """Writes to ``sys.stderr`` as it is at each write, not as it was when logging was
    configured: a test runner (pytest's capture, Click's ``CliRunner``) swaps ``sys.stderr``
    for a stream of its own and closes it afterwards, which a logger bound to that stream
    would then fail on (``ValueError: I/O operation on closed file``) in every later test."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    settings: Settings,
    *,
    stream: TextIO | None = None,
    cache: bool = True,
    buffer_ms: int = 0,
) -> None:
    """Configure structlog (and the stdlib root logger's level) from ``settings``.

    ``settings.log_format``: ``json`` (one JSON object per line), ``console`` (coloured,
    human), ``auto`` (console when ``stream`` is a terminal, else JSON). ``settings.log_level``
    filters events. ``stream`` defaults to ``sys.stderr``, looked up at each write (so a
    swapped and closed ``sys.stderr`` is never written to afterwards). ``cache=False`` keeps loggers
    re-configurable (the CLI, tests); the worker caches them for speed. ``buffer_ms > 0``
    writes lines below WARNING in batches (:class:`BufferedLineLogger`); the worker uses
    ``settings.log_buffer_ms``.
    """
    stream = stream if stream is not None else cast(TextIO, _CurrentStderr())
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {settings.log_level!r}")
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Any = structlog.dev.ConsoleRenderer() if fmt == "console" else _render_json
    structlog.configure(
        processors=[*processors(), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=(
            structlog.WriteLoggerFactory(file=stream)
            if buffer_ms <= 0
            else _SharedLoggerFactory(BufferedLineLogger(stream, buffer_ms=buffer_ms))
        ),
        cache_logger_on_first_use=cache,
    )
    logging.basicConfig(level=level, stream=stream, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger().setLevel(level)


class _SharedLoggerFactory:
    def __init__(self, logger: BufferedLineLogger) -> None:
        self.logger = logger

    def __call__(self, *args: Any) -> BufferedLineLogger:
        return self.logger


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
