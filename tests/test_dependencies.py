"""Every package the library imports at module level is one it declares.

The README's demo command installs gcmc-jobs without the dev extras, so a package that only a
dev tool pulls in would break it on a fresh machine (Typer stopped installing click, which a
module once imported). Imports inside functions are the deliberate optional paths (uvicorn
for ``serve``, aiosmtpd for the ``smtp_server`` fixture) and are not checked here; a module
may import at module level what an extra named in ``ALLOWED`` declares.
"""

from __future__ import annotations

import ast
import functools
import sys
import tomllib
from importlib.metadata import packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gcmc_jobs"
#: Where a module may import more than the base dependencies.
ALLOWED = {
    "http": {"extra:server"},  # the admin API: `pip install gcmc-jobs[server]`
    # the pytest plugin only loads under pytest; its SMTP sink needs the `testing` extra
    "testing": {"pytest", "extra:testing"},
}


def _name(requirement: str) -> str:
    return Requirement(requirement).name.lower().replace("_", "-")


@functools.cache
def _declared(extras: frozenset[str]) -> frozenset[str]:
    """The base dependencies, the named extras', and what their own extras pull in.

    Cached: each call reads the installed metadata of every requirement (``requires``
    scans ``sys.path``), and the test asks once per module of the package, for one of
    three sets of extras (17 s a run uncached)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    declared = set()
    for line in lines:
        requirement = Requirement(line)
        declared.add(_name(line))
        for dependency in requires(requirement.name) or []:
            marker = Requirement(dependency).marker
            if marker and any(marker.evaluate({"extra": e}) for e in requirement.extras):
                declared.add(_name(dependency))
    return frozenset(declared)


def _module_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_level_import_of_the_package_is_a_declared_dependency() -> None:
    distributions = packages_distributions()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        allowed = ALLOWED.get(path.relative_to(PACKAGE).parts[0], set())
        extras = frozenset(a.removeprefix("extra:") for a in allowed if a.startswith("extra:"))
        declared = _declared(extras) | allowed
        for name in _module_level_imports(path):
            if name in sys.stdlib_module_names or name in {"gcmc_jobs", "__future__"}:
                continue
            owners = {d.lower().replace("_", "-") for d in distributions.get(name, [name])}
            if not owners & declared:
                missing.append(f"{path.relative_to(ROOT)} imports {name} ({sorted(owners)})")
    assert missing == []


def _all_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_testing_extra_installs_everything_the_pytest_plugin_imports() -> None:
    # `pip install gcmc-jobs[testing]` is what the README tells a host's test environment to
    # install: every import of the plugin, deferred ones (aiosmtpd) included, must come with it.
    distributions = packages_distributions()
    declared = _declared(frozenset({"testing"}))
    missing = []
    for path in sorted((PACKAGE / "testing").rglob("*.py")):
        for name in _all_imports(path):
            if name in sys.stdlib_module_names or name in {"gcmc_jobs", "__future__"}:
                continue
            owners = {d.lower().replace("_", "-") for d in distributions.get(name, [name])}
            if not owners & declared:
                missing.append(f"{path.relative_to(ROOT)} imports {name} ({sorted(owners)})")
    assert missing == []
