"""The ``gcmc-jobs`` command line: one Typer application, one module per command group.

Every command reads ``GCMC_JOBS_*`` settings (see ``gcmc-jobs --help``); each module below
adds its commands to :data:`app` (``@app.command(...)``, or a sub-app added with
``app.add_typer``). A new command follows three conventions, and the tests in
``tests/cli/test_every_command.py`` and ``tests/cli/test_json_output.py`` check every
command of :data:`app` for them:

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
pydantic.
"""

from __future__ import annotations

from gcmc_jobs.cli import bounces as _bounces  # noqa: F401  (registers its commands)
from gcmc_jobs.cli import campaigns as _campaigns  # noqa: F401
from gcmc_jobs.cli import config as _config  # noqa: F401
from gcmc_jobs.cli import db as _db  # noqa: F401
from gcmc_jobs.cli import dead_letters as _dead_letters  # noqa: F401
from gcmc_jobs.cli import demo as _demo  # noqa: F401
from gcmc_jobs.cli import email as _email  # noqa: F401
from gcmc_jobs.cli import mail_circuit as _mail_circuit  # noqa: F401
from gcmc_jobs.cli import messages as _messages  # noqa: F401
from gcmc_jobs.cli import ops as _ops  # noqa: F401
from gcmc_jobs.cli import outbox as _outbox  # noqa: F401
from gcmc_jobs.cli import reports as _reports  # noqa: F401
from gcmc_jobs.cli import retention as _retention  # noqa: F401
from gcmc_jobs.cli import schedule as _schedule  # noqa: F401
from gcmc_jobs.cli import seed as _seed  # noqa: F401
from gcmc_jobs.cli import sms as _sms  # noqa: F401
from gcmc_jobs.cli import status as _status  # noqa: F401
from gcmc_jobs.cli import transfer as _transfer  # noqa: F401
from gcmc_jobs.cli import webhooks as _webhooks  # noqa: F401
from gcmc_jobs.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``gcmc-jobs`` console script."""
    app()
