"""The one error path of the command line: :class:`CommandGroup` runs every command, and
turns what it raises into one line on stderr and an exit code (:data:`EXIT_CODES`); the
traceback only with ``gcmc-jobs --debug``. What libraries log while a command runs (pika's
connection errors, a failed message in the demo's worker) follows the same rule
(:func:`log_library_records`)."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup

from gcmc_jobs.cli._coercion import defer_coercion, defer_subcommand_coercion
from gcmc_jobs.cli._output import print_error

if TYPE_CHECKING:
    from gcmc_jobs.ops.failures import FailureKind
    from gcmc_jobs.settings import Settings

__all__ = [
    "EXIT_CODES",
    "EXIT_ERROR",
    "EXIT_SETTING",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "CommandGroup",
    "OneLineFormatter",
    "exit_with",
    "log_library_records",
]

#: The command failed: an error of gcmc-jobs (an unknown tenant, queue, job...), or a bug.
EXIT_ERROR = 1
#: The command line was wrong (an unknown option, a malformed argument): Click's own code.
EXIT_USAGE = 2
#: A ``GCMC_JOBS_*`` setting is invalid: fix the configuration.
EXIT_SETTING = 3
#: A service a setting names (database, broker, Redis) cannot be reached or refuses:
#: retrying later may succeed.
EXIT_UNAVAILABLE = 4

#: The exit code of each kind of failure (:func:`gcmc_jobs.ops.failures.explain`).
EXIT_CODES: dict[FailureKind, int] = {
    "setting": EXIT_SETTING,
    "unavailable": EXIT_UNAVAILABLE,
    "error": EXIT_ERROR,
    "unexpected": EXIT_ERROR,
}

# What Typer and Click raise to end a command on purpose: they print and exit themselves.
_THEIRS = (typer.Exit, typer.Abort, typer.TyperException)


class CommandGroup(TyperGroup):
    """The root group of ``gcmc-jobs``: every command, of every sub-group, runs inside
    :meth:`invoke`, so a command only raises and never formats its own errors. It also
    defers Typer's coercion of option values (pydantic) until a value needs it, for itself
    and the command it runs (:mod:`gcmc_jobs.cli._coercion`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        defer_coercion(self, ctx)
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            defer_subcommand_coercion(command, ctx)
        return name, command, rest

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _THEIRS:
            raise
        except BrokenPipeError:
            raise  # the reader went away (``| head``): Click exits quietly
        except Exception as exc:
            exit_with(exc, debug=bool(ctx.params.get("debug")))


def exit_with(exc: BaseException, *, debug: bool = False) -> NoReturn:
    """Print ``exc`` as one line naming the setting at fault (secrets masked) and exit with
    its code; with ``debug``, print the Python traceback first."""
    # Imported when a command fails: explaining needs pydantic, redis-py and SQLAlchemy's
    # error types, which a command that succeeds may never load.
    from gcmc_jobs.ops.failures import explain

    failure = explain(exc, _settings_or_none())
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    hint = " (run `gcmc-jobs --debug …` for the traceback)" if failure.kind == "unexpected" else ""
    print_error(failure.message + ("" if debug else hint))
    raise typer.Exit(EXIT_CODES[failure.kind])


def _settings_or_none() -> Settings | None:
    """The settings of the environment, to name and mask; None when they are invalid."""
    from gcmc_jobs.settings import Settings

    try:
        return Settings()
    except Exception:
        return None


class OneLineFormatter(logging.Formatter):
    """``LEVEL logger message`` on one line; an exception logged with the record is named
    (its type and first line), its traceback left out."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            lines = str(error).strip().splitlines()
            message += (
                f" ({type(error).__name__}: {lines[0]})" if lines else f" ({type(error).__name__})"
            )
        return " ".join(f"{record.levelname} {record.name} {message}".split())


class _CurrentStderr:
    """``sys.stderr`` as it is at each write (a test runner swaps it per command)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def log_library_records(*, debug: bool) -> Callable[[], None]:
    """Write the standard library's log records (WARNING and up, or the root logger's level
    once a command configures logging) to stderr for the running command: one line each,
    with their tracebacks only when ``debug``. Returns the function that removes the handler
    again (a host process or a test runner is left as it was)."""
    handler = logging.StreamHandler(_CurrentStderr())
    formatter = "%(levelname)s %(name)s %(message)s"
    handler.setFormatter(logging.Formatter(formatter) if debug else OneLineFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    return lambda: root.removeHandler(handler)
