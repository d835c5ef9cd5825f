"""Configuring structlog (and the stdlib root logger's level) for an entry point:
:func:`configure_logging`."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO, cast

import structlog

from gcmc_jobs.logging import direct
from gcmc_jobs.logging.buffered import BufferedLineLogger, SharedLoggerFactory
from gcmc_jobs.logging.processors import processors, render_json
from gcmc_jobs.settings import Settings

__all__ = ["configure_logging"]


class _CurrentStderr:
    """Writes to ``sys.stderr`` as it is at each write, not as it was when logging was
    configured: a test runner (pytest's capture, Click's ``CliRunner``) swaps ``sys.stderr``
    for a stream of its own and closes it afterwards, which a logger bound to that stream
    would then fail on (``ValueError: I/O operation on closed file``) in every later test.

    A write holds the lock of the stdlib handler writing to the same stream, if any: under
    ``dramatiq`` a worker process's ``sys.stderr`` is the pipe its parent reads messages
    from (``StreamablePipe``), which Dramatiq's own log handler also writes to. Two threads
    writing to it at once interleave the bytes of their messages; the parent then waits for
    a message that never ends and the worker blocks on the full pipe, every thread that
    logs with it (a batch of lines over 4 KiB is more than one atomic pipe write)."""

    def write(self, text: str) -> int:
        stream = sys.stderr
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
                handler.acquire()
                try:
                    return stream.write(text)
                finally:
                    handler.release()
        return stream.write(text)

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
    renderer: Any = structlog.dev.ConsoleRenderer() if fmt == "console" else render_json
    chain = [*processors(), renderer]
    wrapper_class = structlog.make_filtering_bound_logger(level)
    logger_factory: Any = (
        structlog.WriteLoggerFactory(file=stream)
        if buffer_ms <= 0
        else SharedLoggerFactory(BufferedLineLogger(stream, buffer_ms=buffer_ms))
    )
    structlog.configure(
        processors=chain,
        wrapper_class=wrapper_class,
        logger_factory=logger_factory,
        cache_logger_on_first_use=cache,
    )
    # The per-message events' shortcut through the same chain (gcmc_jobs.logging.direct).
    direct.install(
        direct.DirectWriter(
            level=level,
            processors=chain,
            wrapper_class=wrapper_class,
            logger_factory=logger_factory,
        )
    )
    logging.basicConfig(level=level, stream=stream, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger().setLevel(level)
