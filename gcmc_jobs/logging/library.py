"""The logger library code uses: structlog's configuration once someone configured structlog,
stdlib :mod:`logging` (redacted) until then: :func:`get_logger`.

Why: structlog's default configuration, used by a process that never called
``structlog.configure``, prints every event to stdout with its values as they are. A host
application that imports gcmc-jobs and sends a message would get an ``enqueued`` line on
stdout for every send, secrets unmasked. A library should say nothing unless asked, so until
structlog is configured (by a gcmc-jobs entry point, a test helper, or the host itself) our
events go to the stdlib logger of their name, after :func:`~gcmc_jobs.redaction.redact_event`:
with no logging configured, Python shows warnings and errors on stderr and drops the rest; a
host that configured :mod:`logging` gets them at the levels it chose.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

from gcmc_jobs.redaction import redact_event

__all__ = ["LibraryLogger", "get_logger"]

_LEVELS = ("debug", "info", "warning", "warn", "error", "exception", "critical", "msg")


def _stdlib_logger(name: str) -> Any:
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=[
            structlog.stdlib.filter_by_level,  # drops the event before any other work
            structlog.contextvars.merge_contextvars,
            redact_event,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


class LibraryLogger:
    """A structlog-like logger (``bind``, ``info``, ``warning``, ...) that follows structlog's
    configuration when there is one and writes to stdlib :mod:`logging` otherwise (see the
    module docstring). Decided at each call, so configuring structlog later takes effect."""

    __slots__ = ("_context", "_name", "_stdlib", "_structlog")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}
        # structlog's lazy proxy caches its bound logger when configured to, so the
        # configured path costs what structlog.get_logger() costs.
        self._structlog: Any = structlog.get_logger(name, **self._context)
        self._stdlib: Any = None

    def bind(self, **values: Any) -> LibraryLogger:
        """A logger with ``values`` added to every event's context."""
        return LibraryLogger(self._name, {**self._context, **values})

    def _target(self) -> Any:
        if structlog.is_configured():
            return self._structlog
        if self._stdlib is None:
            self._stdlib = _stdlib_logger(self._name).bind(**self._context)
        return self._stdlib

    def __getattr__(self, name: str) -> Any:
        if name in _LEVELS:
            return getattr(self._target(), name)
        raise AttributeError(name)


def get_logger(name: str) -> LibraryLogger:
    """The logger gcmc-jobs' modules use, named ``name`` (``gcmc_jobs.…``)."""
    return LibraryLogger(name)
