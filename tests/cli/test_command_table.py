"""The table the root group lists commands from (``gcmc_jobs/cli/_commands.py``) matches the
commands the modules register: the same names, each with its module and the first paragraph
of its help (the table's order is the listing's). ``gcmc-jobs --help`` lists the table without
building a command, so its output is the same as with every command built."""

from __future__ import annotations

import inspect
import os
import pkgutil
import subprocess
import sys
from importlib import import_module
from typing import Any

import typer.main

import gcmc_jobs.cli
from gcmc_jobs.cli import app
from gcmc_jobs.cli._commands import COMMANDS

# Every command module of the package.
MODULES = sorted(
    info.name for info in pkgutil.iter_modules(gcmc_jobs.cli.__path__) if info.name[0] != "_"
)


def _registered() -> dict[str, str]:
    """The module of every command and group registered on ``app``, every command module
    imported."""
    for module in MODULES:
        import_module(f"gcmc_jobs.cli.{module}")
    commands = [
        (info.name or typer.main.get_command_name(info.callback.__name__), info)
        for info in app.registered_commands
        if info.callback is not None
    ]
    groups = [(info.name, info) for info in app.registered_groups]
    return {str(name): _module_of(info) for name, info in [*commands, *groups]}


def _module_of(info: Any) -> str:
    """The command module that registered a command (its callback's) or a group (that of
    the first command in it)."""
    if getattr(info, "callback", None) is not None and not hasattr(info, "typer_instance"):
        return str(info.callback.__module__).rsplit(".", 1)[1]
    instance = info.typer_instance
    while not instance.registered_commands:
        instance = instance.registered_groups[0].typer_instance
    return str(instance.registered_commands[0].callback.__module__).rsplit(".", 1)[1]


def test_the_table_names_every_registered_command_with_its_module() -> None:
    table = {name: module for name, (module, _) in COMMANDS.items()}

    assert table == _registered()


def test_each_summary_is_the_first_paragraph_of_the_command_help() -> None:
    _registered()
    root: Any = typer.main.get_command(app)

    for name, (_, summary) in COMMANDS.items():
        command = root.commands[name]
        help_text = command.short_help or command.help or ""
        assert inspect.cleandoc(help_text).split("\n\n")[0].strip() == summary, name
        # What the listing reads besides the summary: a stand-in has none of these.
        assert not command.hidden, name
        assert not command.deprecated, name
        assert not getattr(command, "rich_help_panel", None), name


HELP = "import sys; from gcmc_jobs.cli import main; sys.argv[0] = 'gcmc-jobs'; main()"
IMPORT_ALL = (
    "import pkgutil, gcmc_jobs.cli; "
    "[__import__(f'gcmc_jobs.cli.{m.name}') for m in pkgutil.iter_modules(gcmc_jobs.cli.__path__)"
    " if m.name[0] != '_']; "
)


def _help(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
    env["COLUMNS"] = "120"
    completed = subprocess.run(
        [sys.executable, "-c", code, "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_the_help_from_the_table_is_the_help_with_every_command_built() -> None:
    # Every module imported first: Typer builds every command, as before the group was lazy.
    from_the_table = _help(HELP)
    every_command_built = _help(IMPORT_ALL + HELP)

    assert from_the_table == every_command_built
    assert all(name in from_the_table for name in COMMANDS)
