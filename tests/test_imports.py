"""Importing gcmc-jobs stays light: no connection, no global broker, no broker client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gcmc_jobs import queue_names
from gcmc_jobs.cli._commands import COMMANDS

PROBE = textwrap.dedent(
    """
    import json, socket, sys

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[1:] or args))
        raise OSError("gcmc-jobs must not connect at import")

    socket.socket.connect = lambda self, address: refuse(self, address)
    socket.socket.connect_ex = lambda self, address: refuse(self, address)
    socket.create_connection = refuse

    import dramatiq

    set_broker_calls = []
    original_set_broker = dramatiq.set_broker
    dramatiq.set_broker = lambda broker: set_broker_calls.append(repr(broker))

    for name in sys.argv[1:]:
        __import__(name)

    print(json.dumps({
        "attempts": attempts,
        "set_broker": set_broker_calls,
        "global_broker": repr(dramatiq.broker.global_broker),
        "modules": sorted(sys.modules),
    }))
    """
)


def _import(*modules: str) -> dict[str, object]:
    # Default settings (stub broker, SQLite): the worker module configures from them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("modules", [("gcmc_jobs",), ("gcmc_jobs", "gcmc_jobs.actors")])
def test_importing_the_package_connects_to_nothing(modules: tuple[str, ...]) -> None:
    seen = _import(*modules)

    assert seen["attempts"] == []
    assert seen["set_broker"] == []
    assert seen["global_broker"] == "None"
    loaded = set(seen["modules"])  # type: ignore[arg-type]
    # no broker client is even loaded: they are imported when configure() builds one
    assert not loaded & {"pika", "dramatiq.brokers.redis", "dramatiq.brokers.rabbitmq"}


def test_the_pytest_plugin_connects_to_nothing_and_loads_aiosmtpd_only_when_used() -> None:
    # Every pytest run of a host that installs gcmc-jobs imports the plugin; the SMTP sink's
    # aiosmtpd is an optional extra (gcmc-jobs[testing]).
    seen = _import("gcmc_jobs.testing", "gcmc_jobs.logging")

    assert seen["attempts"] == []
    assert seen["set_broker"] == []
    assert "aiosmtpd" not in set(seen["modules"])  # type: ignore[arg-type]


def test_importing_the_worker_or_the_command_line_loads_no_migration_machinery() -> None:
    # What `dramatiq gcmc_jobs.worker` and `periodiq gcmc_jobs.worker` import: Alembic logs
    # seven INFO lines when imported, and only `gcmc-jobs db upgrade` (and seed, demo) migrate.
    seen = _import("gcmc_jobs.worker", "gcmc_jobs.cli")

    alembic = [name for name in seen["modules"] if name.split(".")[0] == "alembic"]  # type: ignore[union-attr]
    assert alembic == []


# What no light import may load: the ORM and migrations, the broker clients, pydantic-settings,
# templates, logging, the scheduler, and gcmc-jobs' own middleware stack, models and actors.
HEAVY = {
    "sqlalchemy",
    "alembic",
    "redis",
    "pika",
    "pydantic_settings",
    "jinja2",
    "structlog",
    "periodiq",
    "prometheus_client",
    "fastapi",
}
HEAVY_OURS = (
    "gcmc_jobs.middleware.",
    "gcmc_jobs.db",
    "gcmc_jobs.actors",
    "gcmc_jobs.brokers",
    "gcmc_jobs.bootstrap",
    "gcmc_jobs.settings",
    "gcmc_jobs.ops",
)


def _heavy(modules: object) -> list[str]:
    names = list(modules)  # type: ignore[call-overload]
    return sorted(n for n in names if n.split(".")[0] in HEAVY or n.startswith(HEAVY_OURS))


def test_importing_the_package_loads_none_of_its_public_names() -> None:
    # import gcmc_jobs loads only the package: configure() etc. are imported on first use.
    seen = _import("gcmc_jobs")
    ours = [name for name in seen["modules"] if name.startswith("gcmc_jobs")]  # type: ignore[union-attr]
    assert sorted(ours) == ["gcmc_jobs", "gcmc_jobs._lazy"]


# The modules that register the commands: the root group imports one when a run asks for a
# command of it (cli/_commands.py), never to list them.
COMMAND_MODULES = {f"gcmc_jobs.cli.{module}" for module, _ in COMMANDS.values()}


def test_building_the_command_line_loads_no_command_implementation() -> None:
    # What every command imports before it runs: the Typer app and the table of commands;
    # not the command modules, nor the implementations they import when a command runs.
    seen = _import("gcmc_jobs.cli")
    assert _heavy(seen["modules"]) == []
    assert "gcmc_jobs.cli._commands" in seen["modules"]  # type: ignore[operator]
    assert sorted(set(seen["modules"]) & COMMAND_MODULES) == []  # type: ignore[arg-type]


# What the console script loads, run as `gcmc-jobs ...` in a fresh interpreter: the modules
# left in sys.modules when the process exits (the command has run).
RUN_CLI = textwrap.dedent(
    """
    import atexit, json, sys

    report = sys.argv[1]
    atexit.register(lambda: open(report, "w").write(json.dumps(sorted(sys.modules))))
    sys.argv = ["gcmc-jobs", *sys.argv[2:]]

    from gcmc_jobs.cli import main

    sys.exit(main())
    """
)


def _run_cli(tmp_path: Path, *args: str, **settings: str) -> tuple[str, set[str]]:
    """stdout of ``gcmc-jobs *args`` with only the ``GCMC_JOBS_*`` ``settings`` given, and
    the modules it had loaded when it exited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
    env.update({f"GCMC_JOBS_{name.upper()}": value for name, value in settings.items()})
    report = tmp_path / "modules.json"
    completed = subprocess.run(
        [sys.executable, "-c", RUN_CLI, str(report), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout, set(json.loads(report.read_text()))


# Not loaded by `--help` (issue 17, item 3): Dramatiq (and asyncio, which it and redis-py
# import), pydantic (the settings' and Typer's parameter adapters), rich's progress bars
# (`seed`, `run`), and gcmc-jobs' errors and settings.
NOT_FOR_HELP = {
    "dramatiq",
    "asyncio",
    "pydantic",
    "pydantic_core",
    "typer._adapters",
    "rich.progress",
    "rich.live",
    "gcmc_jobs.errors",
    "gcmc_jobs.settings",
    "gcmc_jobs.runtime",
}
# Loaded by `--help` (typer.rich_utils, its help formatter, imports them) but not by a command
# that runs and succeeds.
HELP_ONLY = {"typer.rich_utils", "rich.markdown", "markdown_it", "rich.traceback", "pygments"}


def test_the_help_loads_typer_and_rich_but_neither_dramatiq_nor_pydantic(tmp_path: Path) -> None:
    out, loaded = _run_cli(tmp_path, "--help")

    assert "queues" in out  # the help lists every command group
    assert "dead-letters" in out
    assert "typer.rich_utils" in loaded  # the real help formatter ran
    assert sorted(loaded & NOT_FOR_HELP) == []
    assert _heavy(loaded) == []
    # The listing reads cli/_commands.py: no command module is imported, no command built.
    assert sorted(loaded & COMMAND_MODULES) == []


@pytest.mark.parametrize(
    ("args", "module"),
    [(["dead-letters", "--help"], "dead_letters"), (["db", "upgrade", "--help"], "db")],
)
def test_the_help_of_a_command_loads_its_module_alone(
    tmp_path: Path, args: list[str], module: str
) -> None:
    _, loaded = _run_cli(tmp_path, *args)

    assert sorted(loaded & COMMAND_MODULES) == [f"gcmc_jobs.cli.{module}"]


# What `gcmc-jobs queues` may not load (issue 17, item 3). Pydantic: Typer converts option
# values with pydantic adapters, which the command line builds only for a value that needs
# one (cli/_coercion.py); `queues` takes none (its --json is a flag). Building the first
# adapter imported pydantic, typer._adapters and pydantic's plugin loader (importlib.metadata):
# ~0.2 s of the command's start-up here.
NOT_FOR_QUEUES = {
    "dramatiq",
    "redis",
    "pydantic",
    "pydantic_core",
    "typer._adapters",
    "importlib.metadata",
    "pydantic_settings",
    "gcmc_jobs.settings",
    "gcmc_jobs.runtime",
    "gcmc_jobs.errors",
    "gcmc_jobs.ops.redis_client",
    "gcmc_jobs.ops.known_queues",
    "gcmc_jobs.ops.pauses",
}


@pytest.mark.parametrize("output", ["--json", "table"])
def test_the_queues_command_on_redis_loads_neither_dramatiq_nor_redis_py_nor_pydantic(
    tmp_path: Path, gcmc_redis_url: str, gcmc_namespace: str, output: str
) -> None:
    # What `gcmc-jobs queues` imports to run, on a Redis broker: the CLI, the few settings it
    # reads (cli/_env.py) and the standard-library Redis client (ops/light_redis.py); not
    # pydantic, the help formatter nor any other command's implementation.
    args = ["queues", "--json"] if output == "--json" else ["queues"]
    out, loaded = _run_cli(tmp_path, *args, broker_url=gcmc_redis_url, namespace=gcmc_namespace)

    if output == "--json":
        assert {row["name"] for row in json.loads(out)} >= set(queue_names.ALL)
    else:
        assert all(name in out for name in queue_names.ALL)
    assert {"gcmc_jobs.ops.queue_stats", "gcmc_jobs.ops.light_redis"} <= loaded
    assert (
        sorted(n for n in loaded if n.split(".")[0] in NOT_FOR_QUEUES or n in NOT_FOR_QUEUES) == []
    )
    assert [n for n in _heavy(loaded) if n != "gcmc_jobs.ops"] == [
        "gcmc_jobs.ops.light_redis",
        "gcmc_jobs.ops.queue_stats",
    ]
    assert sorted(loaded & HELP_ONLY) == []
    assert not loaded & {"rich.progress", "rich.live", "rich.panel", "pika", "asyncio"}
    # The root group built `queues` alone: no other command module is imported.
    assert sorted(loaded & COMMAND_MODULES) == ["gcmc_jobs.cli.ops"]


def test_the_queues_command_builds_the_full_settings_for_a_url_it_leaves_to_redis_py(
    tmp_path: Path, gcmc_redis_url: str, gcmc_namespace: str
) -> None:
    # A query option (here redis-py's socket_timeout) is not for the light client: the
    # command falls back to Settings and redis-py, and answers the same.
    out, loaded = _run_cli(
        tmp_path,
        "queues",
        "--json",
        broker_url=f"{gcmc_redis_url}?socket_timeout=5",
        namespace=gcmc_namespace,
    )

    assert {row["name"] for row in json.loads(out)} >= set(queue_names.ALL)
    assert {"redis", "pydantic_settings", "gcmc_jobs.settings"} <= loaded
    assert not loaded & {"gcmc_jobs.middleware.deduplication", "gcmc_jobs.brokers"}
