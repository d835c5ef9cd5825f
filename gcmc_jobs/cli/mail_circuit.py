"""``gcmc-jobs mail-circuit``: the mail server's circuit breaker, and closing it by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from gcmc_jobs.cli._app import JsonOption, app, console, print_json, settings

__all__ = ["mail_circuit_command"]


def _at(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@app.command("mail-circuit")
def mail_circuit_command(
    reset: bool = typer.Option(
        False, "--reset", help="Close the breaker by hand first (held email runs again)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Show the mail server's circuit breaker, the state every worker shares: closed (email
    flows), open (email held while the server fails; probed with backoff) or half open
    (password resets first). Needs Redis (GCMC_JOBS_REDIS_URL, or a redis:// broker)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.errors import ConfigurationError
    from gcmc_jobs.ops.mail_circuit import mail_circuit_state, reset_mail_circuit

    current = settings()
    if current.store_redis_url is None:
        raise ConfigurationError(
            "gcmc-jobs mail-circuit needs Redis: set GCMC_JOBS_REDIS_URL (the workers keep "
            f"the breaker there); with the {current.broker_kind} broker and no Redis, each "
            "worker has its own"
        )
    state = reset_mail_circuit(current) if reset else mail_circuit_state(current)
    if as_json:
        print_json({"enabled": current.mail_breaker, **state.as_dict()})
        return
    if not current.mail_breaker:
        console.print("mail circuit breaker [yellow]off[/] (GCMC_JOBS_MAIL_BREAKER=false)")
        return
    if state.state == "open":
        console.print(
            f"mail circuit [red]open[/]: email held since {_at(state.opened_at_ms)}, next "
            f"probe {_at(state.next_probe_ms)}, {state.probes} probe(s) so far; last error: "
            f"{state.last_error}",
            highlight=False,
        )
    elif state.state == "half_open":
        console.print(
            f"mail circuit [yellow]half open[/] since {_at(state.half_open_at_ms)}: password "
            "resets first, the rest resumes on the next delivery",
            highlight=False,
        )
    else:
        failures = f" ({state.failures} delivery failure(s) in a row)" if state.failures else ""
        note = " (reset)" if reset else ""
        console.print(f"mail circuit [green]closed[/]{note}{failures}", highlight=False)
