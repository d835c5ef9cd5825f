"""The root Typer application and the helpers every command module shares (see the
package docstring for how a command reports errors and prints).

Adding a command (start-up stays light: ``gcmc-jobs --help`` and every command load only
what the running command needs; ``tests/test_imports.py`` checks it):

1. Write ``gcmc_jobs/cli/<group>.py``. At its top it imports only ``typer``, ``rich``'s
   console and table, and ``gcmc_jobs.cli._app`` (and the standard library): the names Typer
   needs to build the command's signature and help. Not Dramatiq, not ``gcmc_jobs.errors``
   (it imports Dramatiq), not ``rich.progress`` or ``rich.panel``. Register with
   ``@app.command("name")``, or a sub-app ``x_app = typer.Typer(help=...)`` added with
   ``app.add_typer(x_app, name="x")``.
2. Import the implementation (``gcmc_jobs.ops``, ``db``, ``scheduling``, ``actors``,
   ``bootstrap``, SQLAlchemy, ...) *inside* the command function, first thing after its
   docstring; a type it only annotates with goes under ``if TYPE_CHECKING:``. Help text
   is static (no ``f"One of: {NAMES}"`` that would import the module defining ``NAMES``).
3. Add ``from gcmc_jobs.cli import <group> as _<group>  # noqa: F401`` to
   ``gcmc_jobs/cli/__init__.py``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer._click.globals import get_current_context

from gcmc_jobs.cli._errors import EXIT_ERROR, CommandGroup, exit_with, log_library_records
from gcmc_jobs.cli._output import (
    JsonOption,
    console,
    err_console,
    fit_consoles,
    print_error,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gcmc_jobs.settings import Settings

__all__ = [
    "JsonOption",
    "app",
    "configure_command_logging",
    "console",
    "engine",
    "err_console",
    "fail",
    "handle",
    "print_json",
    "print_table",
    "settings",
]

app = typer.Typer(
    name="gcmc-jobs",
    cls=CommandGroup,
    help="Operate gcmc-jobs: migrate, seed, run jobs, inspect queues and dead letters.\n\n"
    "Settings come from GCMC_JOBS_* environment variables (GCMC_JOBS_DATABASE_URL, "
    "GCMC_JOBS_BROKER_URL, GCMC_JOBS_REDIS_URL, GCMC_JOBS_EMAIL_URL, …). An error is one "
    "line naming the setting at fault; exit codes: 1 error, 2 usage, 3 invalid setting, "
    "4 service unreachable.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _options(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help="On an error, also print its Python traceback."
    ),
) -> None:
    """Options of every command (``CommandGroup`` reads ``--debug`` when one fails)."""
    fit_consoles()
    ctx.call_on_close(log_library_records(debug=debug))


def settings() -> Settings:
    """Settings from the environment. An invalid one raises pydantic's ``ValidationError``,
    which the error path prints as one line naming each invalid variable (exit code 3)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.settings import Settings

    return Settings()


def engine(current: Settings | None = None) -> Engine:
    """An engine on the configured database, bound to the tables of the configured mapping
    (``GCMC_JOBS_SCHEMA_MAPPING``, ``GCMC_JOBS_PLATFORM_TABLES``), as the runtime's is: the
    queries, the migrations and the seed loader find them with ``tables_of``."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.engine import make_engine
    from gcmc_jobs.db.mapping import load_mapping
    from gcmc_jobs.db.tables import bind, build_tables

    current = current or settings()
    tables = build_tables(
        load_mapping(current.schema_mapping), managed=current.platform_tables == "managed"
    )
    made = make_engine(current.database_url.get_secret_value(), jit=current.database_jit)
    bind(made, tables)
    return made


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``error: <message>`` (rich markup) on stderr as one line and exit with
    ``code``: for a command's own refusals (bad combinations of options). Anything else,
    raise it: the error path explains it."""
    print_error(message, markup=True)
    raise typer.Exit(code)


def handle(exc: BaseException) -> NoReturn:
    """Explain ``exc`` and exit as the error path does (for a command that catches it to
    do something first; otherwise just let it propagate)."""
    context = _current_context()
    exit_with(exc, debug=bool(context is not None and context.find_root().params.get("debug")))


def configure_command_logging(current: Settings) -> None:
    """``configure_logging(current, cache=False)`` for the running command only: the previous
    structlog configuration and root logger level are restored when the command ends, so a
    process that runs commands in-process (a host app, ``CliRunner`` in tests) is left as
    it was found."""
    import structlog

    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.logging import configure_logging

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
