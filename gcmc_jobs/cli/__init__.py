"""The ``gcmc-jobs`` command line: one Typer application, one module per command group.

Every command reads ``GCMC_JOBS_*`` settings (see ``gcmc-jobs --help``); each command module
adds its commands to :data:`app` (``@app.command(...)``, or a sub-app added with
``app.add_typer``), and :mod:`gcmc_jobs.cli._commands` names the module of each command: the
root group imports a module when a run asks for one of its commands (``--help`` lists the
commands from that table and imports none). A new command follows three conventions, and
the tests in ``tests/cli/test_every_command.py`` and ``tests/cli/test_json_output.py``
check every command of :data:`app` for them:

Errors: raise, do not catch.
    Every command runs inside one error path (:class:`~gcmc_jobs.cli._errors.CommandGroup`,
    the root group of :data:`app`): what a command raises is printed as one line on stderr
    that names the setting at fault, secrets masked
    (:func:`gcmc_jobs.ops.failures.explain`), and the process exits with the code of its
    kind: 1 an error (ours, or a bug), 2 a usage error (Click's), 3 an invalid
    ``GCMC_JOBS_*`` setting, 4 a database, broker or Redis that cannot be reached. The
    traceback is printed only with the global ``gcmc-jobs --debug``. Build settings with
    :func:`~gcmc_jobs.cli._app.settings` and let its ``ValidationError`` through; refuse a
    bad combination of options with :func:`~gcmc_jobs.cli._app.fail` (or raise
    ``typer.BadParameter`` for one bad value: exit code 2).

Output for scripts: ``--json``.
    A command that prints a table takes ``as_json: bool = JsonOption`` and, with it, prints
    exactly one JSON document with :func:`~gcmc_jobs.cli._output.print_json` (a listing is
    a list, ``[]`` when empty) and nothing else on stdout.

Tables: :func:`~gcmc_jobs.cli._output.print_table`.
    On a terminal a table fits its width; through a pipe or into a file it keeps its
    natural width, every cell whole (never rich's 80 columns).

Start-up stays light: no command module imports a server or Alembic at its top (the
server extra is imported by ``serve`` when it runs; Alembic by
:func:`gcmc_jobs.db.migrate.upgrade` when it migrates), and Typer's pydantic coercion of an
option is built only for a value that needs it (:mod:`gcmc_jobs.cli._coercion`): a command
whose options are flags, or unset with a None default (``queues [--json]``), loads no
pydantic. Typer builds a command (reads its annotations, makes its parameters) only when
it runs: ``--help`` builds none, ``queues`` only ``queues``.
"""

from __future__ import annotations

from gcmc_jobs.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``gcmc-jobs`` console script."""
    app()
