"""The hot path of the per-message events: :func:`direct_writer`, the configured processor
chain called without structlog's bound-logger machinery.

:class:`~gcmc_jobs.middleware.StructuredLogging` logs two events for every message a worker
runs (``started``, ``succeeded``). Through structlog each costs, besides the processors, the
library logger's lookup, structlog's lazy proxy, the filtering wrapper and the event dict's
assembly: about a third of the event. When the configuration in force is the one
:func:`~gcmc_jobs.logging.configure_logging` installed, :class:`DirectWriter` runs that
configuration's own processors and writer itself, so each line is exactly what structlog
would have written (same processors, same order, same writer), and an event below the
configured level is dropped before anything is built. When anyone reconfigures structlog
afterwards (a test's ``capture_logs`` or ``capture_events``, a host application), the writer
no longer matches the configuration and :func:`direct_writer` answers ``None``: the caller
goes through structlog as before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

__all__ = ["DirectWriter", "direct_writer", "install"]

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class DirectWriter:
    """Writes an event through ``processors`` to ``sink`` (the logger ``logger_factory``
    made), as structlog's filtering bound logger of ``level`` would.

    Valid while structlog's configuration holds the same processors (compared by content:
    ``capture_logs`` swaps them inside the same list), wrapper class and logger factory.
    """

    __slots__ = ("_chain", "_factory", "_processors", "_sink", "_wrapper", "level")

    def __init__(
        self, *, level: int, processors: Sequence[Any], wrapper_class: Any, logger_factory: Any
    ) -> None:
        self.level = level
        self._processors = processors
        self._chain = tuple(processors)
        self._wrapper = wrapper_class
        self._factory = logger_factory
        self._sink = logger_factory()

    def matches(self, config: Mapping[str, Any]) -> bool:
        """Whether structlog's configuration ``config`` is still the one this writer copies."""
        processors = config["processors"]
        return (
            config["wrapper_class"] is self._wrapper
            and config["logger_factory"] is self._factory
            and processors is self._processors
            and tuple(processors) == self._chain
        )

    def write(self, method: str, event: str, fields: Mapping[str, Any]) -> None:
        """Log ``event`` with ``fields`` at ``method`` (``"info"``, ``"warning"``,
        ``"error"``): what ``structlog.get_logger().<method>(event, **fields)`` does."""
        if _LEVELS[method] < self.level:
            return
        event_dict: Any = dict(fields)
        event_dict["event"] = event
        try:
            for processor in self._chain:
                event_dict = processor(self._sink, method, event_dict)
        except structlog.DropEvent:
            return
        getattr(self._sink, method)(event_dict)


_installed: DirectWriter | None = None


def install(writer: DirectWriter | None) -> None:
    """Make ``writer`` the direct path (``None``: none). Called by ``configure_logging``."""
    global _installed
    _installed = writer


def direct_writer() -> DirectWriter | None:
    """The installed writer while structlog's configuration is still the one it copies,
    else ``None`` (log through structlog)."""
    writer = _installed
    if writer is None or not writer.matches(structlog.get_config()):
        return None
    return writer
