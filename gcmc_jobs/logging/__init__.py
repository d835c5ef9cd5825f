"""Logging of gcmc-jobs: structlog configured by the entry points, secrets redacted.

Library code only calls :func:`get_logger` (:mod:`gcmc_jobs.logging.library`: structlog once
it is configured, redacted stdlib logging until then, so a host that configured nothing gets
no line on stdout). :func:`configure_logging` is called by
entry points alone (``gcmc_jobs.worker`` and the ``gcmc-jobs`` command), never on import; a
host application that configures structlog itself should add :func:`redact_event` to its
processors. One concept per module:

- :mod:`gcmc_jobs.logging.configuration`: :func:`configure_logging`;
- :mod:`gcmc_jobs.logging.processors`: what every event goes through before it is written
  (:func:`processors`, the timestamp, the JSON renderer);
- :mod:`gcmc_jobs.logging.buffered`: :class:`BufferedLineLogger`, the worker's batched writer;
- :func:`redact_event`, the redaction processor, lives with the rules it applies in
  :mod:`gcmc_jobs.redaction`;
- capturing events in a test: :func:`gcmc_jobs.testing.capture_events`.
"""

from __future__ import annotations

from gcmc_jobs.logging.buffered import BufferedLineLogger
from gcmc_jobs.logging.configuration import configure_logging
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.logging.processors import processors
from gcmc_jobs.redaction import redact_event

__all__ = ["BufferedLineLogger", "configure_logging", "get_logger", "processors", "redact_event"]
