"""One attempt of a delivery actor (email, SMS, campaign email): the current message's options,
whether this attempt is its last, and how a failed attempt is counted and logged."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from gcmc_jobs.errors import PermanentError
from gcmc_jobs.logging.library import LibraryLogger

__all__ = ["counted", "current_options", "is_final_attempt"]


def current_options() -> dict[str, Any]:
    """The options of the message being processed (empty outside a worker)."""
    message = CurrentMessage.get_current_message()
    return message.options if message is not None else {}


def is_final_attempt(options: dict[str, Any], declared: dramatiq.Actor[Any, Any]) -> bool:
    """Whether no retry follows a failure of this attempt: its ``retries`` reached the
    message's ``max_retries`` (else the ``declared`` actor's, else 0)."""
    max_retries = options.get("max_retries", declared.options.get("max_retries", 0))
    return bool(options.get("retries", 0) >= max_retries)


@contextmanager
def counted(
    count: Callable[[str], None], log: LibraryLogger, *, failed: str, retry: str
) -> Iterator[None]:
    """Count and log a delivery that raises: a permanent error as ``failed`` (a warning
    named ``failed``), any other as ``retried`` (an info named ``retry``); the error goes on
    to Dramatiq either way. The caller counts and logs the outcome of one that returns."""
    try:
        yield
    except PermanentError as exc:
        count("failed")
        log.warning(failed, error_type=type(exc).__name__, error=str(exc))
        raise
    except Exception as exc:
        count("retried")
        log.info(retry, error_type=type(exc).__name__, error=str(exc))
        raise
