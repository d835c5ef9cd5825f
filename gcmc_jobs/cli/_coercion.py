"""Typer's coercion of option values, built only for a value that needs it.

Typer 0.29 converts every parameter's value with a pydantic ``TypeAdapter`` that it builds the
first time the parameter is processed, even when the value is None (an option not given:
``--help``, ``--install-completion``...), which it then returns untouched. Building the first
adapter imports pydantic and pydantic's plugin loader (``importlib.metadata``): about 0.2 s of
the start-up of a command that takes no option value (``gcmc-jobs queues``; issue 17, item 3).

:func:`defer_coercion` gives each parameter a stand-in that returns None (or ``()``) as Typer
would and, for any other value, builds Typer's own coercion and hands the value to it: the
same conversions and the same error messages, later. ``tests/test_dramatiq_contract.py``
checks the Typer internals this relies on; ``pyproject.toml`` pins Typer to the releases that
check passed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from typer import _click
from typer._coercion import RuntimeParam, build_runtime_param
from typer.core import TyperGroup, _TyperParameter

__all__ = ["defer_coercion", "defer_subcommand_coercion"]


@dataclass(frozen=True)
class _Deferred(RuntimeParam):
    """Typer's ``RuntimeParam.coerce`` answers None and a missing multiple value itself;
    any other value goes to the parameter's real coercion, built here on first use."""

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: _click.Context) -> Any:
        real = build_runtime_param(param.type_descriptor)
        param._runtime_param = real
        return real._coerce_value(value, param=param, ctx=ctx)


def _defer(param: _click.Parameter) -> None:
    if isinstance(param, _TyperParameter) and param._runtime_param is None:
        param._runtime_param = _Deferred(
            parameter_info=param.type_descriptor.parameter_info,
            annotation=param.type_descriptor.annotation,
        )


def defer_coercion(command: _click.Command, ctx: _click.Context) -> None:
    """Defer the coercion of the parameters of ``command``, its help option included, about
    to parse its arguments in its context ``ctx``."""
    for param in command.get_params(ctx):
        _defer(param)


def defer_subcommand_coercion(command: _click.Command, parent: _click.Context) -> None:
    """Defer the coercion of the parameters of ``command``, about to run under the context
    ``parent``, and of all its subcommands', their help options included."""
    _defer_params(command)
    _defer_help_options(command, parent)


def _subcommands(command: _click.Command) -> list[_click.Command]:
    return list(command.commands.values()) if isinstance(command, TyperGroup) else []


def _defer_params(command: _click.Command) -> None:
    for param in command.params:
        _defer(param)
    for sub in _subcommands(command):
        _defer_params(sub)


def _defer_help_options(command: _click.Command, parent: _click.Context) -> None:
    # A command's help option is made when the command runs, named from its own context's
    # help_option_names: those of its parent's context unless its context_settings name
    # others. Then its help option and its subcommands' are left to Typer.
    if "help_option_names" in command.context_settings:
        return
    help_option = command.get_help_option(parent)
    if help_option is not None:
        _defer(help_option)
    for sub in _subcommands(command):
        _defer_help_options(sub, parent)
