"""What commands print and how: the consoles, one JSON document (``--json``), whole tables
through a pipe, and the one-line error."""

from __future__ import annotations

import json
from datetime import date, datetime, time
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = [
    "JsonOption",
    "console",
    "err_console",
    "fit_consoles",
    "print_error",
    "print_json",
    "print_table",
]

console = Console()
err_console = Console(stderr=True)

#: The ``--json`` option of every command that prints a table: one JSON document on stdout
#: (a list for a listing, ``[]`` when it is empty), nothing else.
JsonOption: Any = typer.Option(
    False, "--json", help="Print one JSON document (a list for a listing) instead of a table."
)

# Wide enough for any table gcmc-jobs prints: the bound of a table's natural width when the
# output is not a terminal.
_UNBOUNDED = 100_000


def fit_consoles() -> None:
    """Fit the consoles to where output goes, before each command: on a terminal, wrap text at
    its width; elsewhere (a pipe, a file), never break a line of text."""
    for each in (console, err_console):
        each.soft_wrap = not each.is_terminal


def print_json(document: Any) -> None:
    """Print ``document`` as one indented JSON document on stdout, with no markup,
    highlighting or wrapping: dates and times in ISO 8601, other values JSON lacks as their
    ``str``."""
    typer.echo(json.dumps(document, indent=2, default=_plain, ensure_ascii=False))


def _plain(value: Any) -> str:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def print_table(table: Table) -> None:
    """Print ``table``: at most as wide as the terminal on one, at its natural width
    elsewhere, so that a pipe or a file gets every cell whole (rich assumes 80 columns when
    the output is not a terminal, and would fold or cut cells to fit)."""
    if console.is_terminal:
        console.print(table)
        return
    natural = console.measure(table, options=console.options.update_width(_UNBOUNDED)).maximum
    Console(file=console.file, width=max(natural, 1), soft_wrap=True).print(table)


def print_error(message: str, *, markup: bool = False) -> None:
    """Print ``error: <message>`` on stderr as one line (line breaks in ``message`` become
    spaces; never wrapped); ``message`` is plain text unless ``markup``."""
    one_line = " ".join(message.split())
    text = one_line if markup else escape(one_line)
    err_console.print(f"[bold red]error:[/] {text}", soft_wrap=True)
