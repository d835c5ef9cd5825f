"""Lazy exports for a package ``__init__``: its public names are imported on first use.

A package lists which module defines each public name; :func:`exports` returns the module
``__getattr__`` and ``__dir__`` (PEP 562) that import that module when the name is first
read, and keep the value in the package. ``import gcmc_jobs`` or ``import
gcmc_jobs.middleware`` then costs nothing until a name is used, and the command line loads
only what the running command needs. The same names are imported under
``if TYPE_CHECKING:`` in the package, for mypy and editors::

    if TYPE_CHECKING:
        from gcmc_jobs.settings import Settings

    __getattr__, __dir__ = exports(__name__, {"Settings": "gcmc_jobs.settings"})
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["exports"]


def exports(
    package: str, origins: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose public name ``name`` is
    defined in module ``origins[name]``. An unknown name raises ``AttributeError`` (so
    ``from package import submodule`` still imports a submodule)."""
    origins = dict(origins)

    def __getattr__(name: str) -> Any:
        origin = origins.get(name)
        if origin is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(origin), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(origins))

    return __getattr__, __dir__
