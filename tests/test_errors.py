"""The exception tree: every exported error is one the package raises (or a base of some)."""

from __future__ import annotations

import ast
from pathlib import Path

import gcmc_jobs.errors

PACKAGE = Path(gcmc_jobs.errors.__file__).resolve().parent


def _constructed_names() -> set[str]:
    """Names called as ``Name(...)`` or ``module.Name(...)`` anywhere in the package."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Name):
                    names.add(node.func.id)
                elif isinstance(node.func, ast.Attribute):
                    names.add(node.func.attr)
    return names


def test_every_exported_error_is_raised_somewhere_or_is_a_base_of_one() -> None:
    # An error that is exported but never raised misleads host code that catches it
    # (RecipientSuppressed was: a suppressed address is an outcome, not an error).
    exported = {name: getattr(gcmc_jobs.errors, name) for name in gcmc_jobs.errors.__all__}
    constructed = _constructed_names()
    bases = {
        base.__name__
        for error in exported.values()
        for base in error.__mro__[1:]
        if base.__module__ == gcmc_jobs.errors.__name__
    }
    unused = sorted(set(exported) - constructed - bases)
    assert unused == []


def test_recipient_suppressed_is_no_longer_exported() -> None:
    assert "RecipientSuppressed" not in gcmc_jobs.errors.__all__
    assert not hasattr(gcmc_jobs.errors, "RecipientSuppressed")
