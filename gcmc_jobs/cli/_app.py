"""The root Typer application and the helpers every command module shares."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import structlog
import typer
from rich.console import Console
from sqlalchemy import Engine
from typer._click.globals import get_current_context

from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.errors import GcmcJobsError
from gcmc_jobs.logging import configure_logging
from gcmc_jobs.settings import Settings

__all__ = [
    "app",
    "configure_command_logging",
    "console",
    "engine",
    "err_console",
    "fail",
    "handle",
    "settings",
]

app = typer.Typer(
    name="gcmc-jobs",
    help="Operate gcmc-jobs: migrate, seed, run jobs, inspect queues and dead letters.\n\n"
    "Settings come from GCMC_JOBS_* environment variables (GCMC_JOBS_DATABASE_URL, "
    "GCMC_JOBS_BROKER_URL, GCMC_JOBS_REDIS_URL, GCMC_JOBS_EMAIL_URL, …).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    """Settings from the environment, with a readable error when one is invalid."""
    try:
        return Settings()
    except ValueError as exc:
        fail(f"invalid GCMC_JOBS_* setting:\n{exc}")


def engine(current: Settings | None = None) -> Engine:
    """An engine on the configured database."""
    current = current or settings()
    return make_engine(current.database_url.get_secret_value())


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` in red on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def handle(exc: GcmcJobsError) -> NoReturn:
    """Turn one of our errors into a clean exit."""
    fail(str(exc))


def configure_command_logging(current: Settings) -> None:
    """``configure_logging(current, cache=False)`` for the running command only: the previous
    structlog configuration and root logger level are restored when the command ends, so a
    process that runs commands in-process (a host app, ``CliRunner`` in tests) is left as
    it was found."""
    previous = structlog.get_config()
    root = logging.getLogger()
    previous_level = root.level
    configure_logging(current, cache=False)
    context = _current_context()
    if context is None:
        return

    def restore() -> None:
        structlog.configure(**previous)
        root.setLevel(previous_level)

    context.call_on_close(restore)


def _current_context() -> Any:
    """The running command's context, or None outside a command.

    Typer 0.2x vendors its own copy of click (``typer._click``, private) and no longer
    installs click: its context stack is the one Typer commands run in.
    ``tests/test_dramatiq_contract.py`` checks the name, and ``pyproject.toml`` pins Typer to
    the releases that check passed on.
    """
    return get_current_context(silent=True)
