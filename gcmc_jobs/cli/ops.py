"""``gcmc-jobs queues``, ``pause``, ``resume``, ``health`` and ``serve``: operating a deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gcmc_jobs.cli._app import JsonOption, app, console, fail, print_json, print_table, settings

if TYPE_CHECKING:
    from gcmc_jobs.settings import Settings

__all__ = ["health_command", "pause_command", "queues_command", "resume_command", "serve_command"]


def _age(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _count(value: int | None) -> str:
    return "n/a" if value is None else str(value)


@app.command("queues")
def queues_command(
    as_json: bool = JsonOption,
) -> None:
    """Show each queue: ready, delayed, in flight, broker dead-letter queue, oldest age."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.cli._env import redis_command_settings
    from gcmc_jobs.ops.queue_stats import queue_stats, redis_queue_stats

    # On a Redis broker, the few settings the command needs, read without pydantic-settings,
    # and Redis without redis-py (start-up, issue 17); anything else: the full settings.
    light = redis_command_settings()
    if light is not None:
        stats = redis_queue_stats(
            light.broker, light.namespace, stores=light.stores, timeout_ms=light.timeout_ms
        )
    else:
        current = settings()
        if current.broker_kind == "stub":
            fail("the stub broker lives inside one process: set GCMC_JOBS_BROKER_URL to inspect it")
        stats = queue_stats(current, timeout_ms=current.health_timeout_ms)
    if as_json:
        print_json([s.as_dict() for s in stats])
        return
    table = Table(
        title="gcmc-jobs queues",
        caption="dead: the broker's own dead-letter queue (gcmc-jobs dead-letters lists ours)",
    )
    for column in ("queue", "ready", "delayed", "in flight", "dead", "oldest", "state"):
        left = column in ("queue", "state")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    for s in stats:
        table.add_row(
            s.name,
            str(s.ready),
            _count(s.delayed),
            _count(s.in_flight),
            _count(s.dead),
            _age(s.oldest_age_ms),
            "[yellow]paused[/]" if s.paused else "[green]running[/]",
        )
    print_table(table)


def _shared_pauses(command: str) -> Settings:
    """The settings, when they name the Redis the workers read pauses from. Without one
    (a RabbitMQ or stub broker and no ``GCMC_JOBS_REDIS_URL``), a pause would go to an
    in-process set of this command that no worker reads: refused, in one line."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.errors import ConfigurationError

    current = settings()
    if current.store_redis_url is None:
        raise ConfigurationError(
            f"gcmc-jobs {command} needs Redis: set GCMC_JOBS_REDIS_URL (the workers read the "
            f"paused queues there); with the {current.broker_kind} broker and no Redis, no "
            "worker would see it"
        )
    return current


@app.command("pause")
def pause_command(queue: str = typer.Argument(..., help="The queue to pause.")) -> None:
    """Pause QUEUE on every worker: its messages wait, none lost, none run, until resumed.
    Needs Redis (GCMC_JOBS_REDIS_URL, or a redis:// broker)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops.pauses import pause_queue

    current = _shared_pauses("pause")
    changed = pause_queue(current, queue)
    note = "" if changed else " (it already was)"
    console.print(
        f"[yellow]paused[/] {queue}{note}; workers notice within {current.pause_refresh_ms} ms"
    )


@app.command("resume")
def resume_command(queue: str = typer.Argument(..., help="The queue to resume.")) -> None:
    """Resume QUEUE: its waiting messages run again within GCMC_JOBS_PAUSE_DELAY_MS.
    Needs Redis (GCMC_JOBS_REDIS_URL, or a redis:// broker)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops.pauses import resume_queue

    current = _shared_pauses("resume")
    changed = resume_queue(current, queue)
    note = "" if changed else " (it was not paused)"
    console.print(f"[green]resumed[/] {queue}{note}")


@app.command("health")
def health_command(
    check: Annotated[
        list[str] | None,
        typer.Option("--check", "-c", help="Run only this check (repeatable); all by default."),
    ] = None,
) -> None:
    """Print the health report as JSON; exit 1 when unhealthy (warnings exit 0)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops.health import ALL_CHECKS, check_health

    unknown = set(check or ()) - set(ALL_CHECKS)
    if unknown:
        fail(f"unknown check(s) {sorted(unknown)}; known: {', '.join(ALL_CHECKS)}", code=2)
    report = check_health(settings(), checks=check or None)
    typer.echo(report.to_json())
    raise typer.Exit(0 if report.healthy else 1)


@app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port to listen on."),
) -> None:
    """Run the admin HTTP API and dashboard (needs the server extra of gcmc-jobs)."""
    try:
        # Deferred on purpose: the admin API needs the optional server extra (FastAPI,
        # uvicorn), which the rest of the command line does not.
        import uvicorn

        from gcmc_jobs.http import create_app
    except ImportError:
        fail("gcmc-jobs serve needs the server extra: pip install 'gcmc-jobs\\[server]'")
    current = settings()
    if current.admin_token is None:
        console.print(
            "[yellow]GCMC_JOBS_ADMIN_TOKEN is not set: every data endpoint will answer 503.[/]"
        )
    console.print(f"dashboard: http://{host}:{port}/dashboard")
    uvicorn.run(create_app(current), host=host, port=port, log_level="warning")
