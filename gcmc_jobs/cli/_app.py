"""The root Typer application and the helpers every command module shares (see the
package docstring for how a command reports errors and prints).

Adding a command (start-up stays light: ``gcmc-jobs --help`` imports no command module and
builds no command, and every other run imports and builds only the command it runs;
``tests/test_imports.py`` checks it):

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
3. Add a line ``"name": ("<group>", "<first paragraph of its help>")`` to
   :data:`gcmc_jobs.cli._commands.COMMANDS`, where ``--help`` lists it (the root group,
   :class:`RootGroup`, imports ``<group>`` when a run asks for ``name``).
   ``tests/cli/test_command_table.py`` fails until the line is there, and while it differs
   from the command's help.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from importlib import import_module
from typing import TYPE_CHECKING, Any, NoReturn

import typer
import typer.main
from typer._click.globals import get_current_context
from typer.core import TyperCommand

from gcmc_jobs.cli._commands import COMMANDS
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
    "RootGroup",
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


class _LazyCommands(MutableMapping[str, Any]):
    """The root group's commands: every name of :data:`COMMANDS` (and any command already
    registered when the group was built), each imported and built on first access. While
    :attr:`listing`, a command not built yet is a stand-in carrying only its name and
    summary: what the root ``--help`` shows of it."""

    def __init__(self, built: MutableMapping[str, Any]) -> None:
        self.built = dict(built)
        self.listing = False

    def __getitem__(self, name: str) -> Any:
        if name in self.built:
            return self.built[name]
        if name not in COMMANDS:
            raise KeyError(name)
        module, summary = COMMANDS[name]
        if self.listing:
            return TyperCommand(name=name, help=summary)
        # The command's module, imported when the run asks for its command: it registers
        # its commands on `app` (the root ``--help`` needs none of them).
        import_module(f"gcmc_jobs.cli.{module}")
        self.built[name] = _build(name)
        return self.built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        del self.built[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self.built if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(1 for name in self.built if name not in COMMANDS)


def _build(name: str) -> Any:
    """The Click command (or group) ``name`` registered on :data:`app`, built as Typer
    builds it in ``typer.main.get_group_from_info``."""
    for info in app.registered_commands:
        callback_name = info.callback.__name__ if info.callback else ""
        if (info.name or typer.main.get_command_name(callback_name)) == name:
            return typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
    for group in app.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(
                group,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
    raise LookupError(f"{name!r} is in cli/_commands.py but no module registers it")


class RootGroup(CommandGroup):
    """The ``gcmc-jobs`` group: a command's module is imported, and the command built, only
    when a run asks for it (:mod:`gcmc_jobs.cli._commands`). Listing them (``--help``)
    builds none; completing a name, or the suggestion for a mistyped one, sees them all."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(self.commands)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        commands = self.commands
        assert isinstance(commands, _LazyCommands)
        commands.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            commands.listing = False


app = typer.Typer(
    name="gcmc-jobs",
    cls=RootGroup,
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
