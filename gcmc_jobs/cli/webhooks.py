"""``gcmc-jobs webhooks``: a tenant's webhook endpoints and their deliveries.

``list | add | remove | enable | disable | test`` manage endpoints; ``deliveries`` lists
deliveries, ``attempts`` shows one delivery's attempts, ``replay`` makes one delivery (or
every failed one of a tenant or endpoint) pending again and sends it. ``add`` prints the
endpoint's signing secret: the only time it is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from gcmc_jobs.cli._app import (
    JsonOption,
    app,
    configure_command_logging,
    console,
    engine,
    fail,
    print_json,
    print_table,
    settings,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gcmc_jobs.db.tables import Id

__all__ = ["webhooks_app"]

webhooks_app = typer.Typer(
    help="Outbound webhooks: a tenant's endpoints (signed Standard Webhooks requests), "
    "their deliveries and attempts, replay."
)
app.add_typer(webhooks_app, name="webhooks")

TenantOpt = typer.Option(None, "--tenant", help="Only this tenant's (its id).")


def _engine() -> Engine:
    current = settings()
    configure_command_logging(current)
    return engine(current)


def _tenant(made: Engine, tenant: str | None) -> Id | None:
    """``--tenant`` as the mapping's id type."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.tables import tables_of

    if tenant is None:
        return None
    if tables_of(made).mapping.id_type != "integer":
        return tenant
    try:
        return int(tenant)
    except ValueError:
        raise typer.BadParameter(f"{tenant!r}: tenant ids are integers here") from None


@webhooks_app.command("list")
def list_command(tenant: str | None = TenantOpt, as_json: bool = JsonOption) -> None:
    """List webhook endpoints (never their secrets); --json: one JSON list."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.services import webhook_endpoints as service

    made = _engine()
    with session_scope(made) as session:
        found = service.list_endpoints(session, _tenant(made, tenant))
    if as_json:
        print_json([endpoint.as_dict() for endpoint in found])
        return
    table = Table(title=f"{len(found)} webhook endpoint(s)")
    for column in ("id", "tenant", "url", "event types", "enabled", "description"):
        table.add_column(column)
    for endpoint in found:
        table.add_row(
            str(endpoint.id),
            str(endpoint.tenant_id),
            endpoint.url,
            " ".join(endpoint.event_types),
            "yes" if endpoint.enabled else f"no ({endpoint.disabled_reason or 'disabled'})",
            endpoint.description or "",
        )
    print_table(table)


@webhooks_app.command("add")
def add_command(
    tenant: str = typer.Argument(..., help="The tenant's id."),
    url: str = typer.Argument(..., help="Where to POST events: http(s)://…"),
    events: str = typer.Option(
        "*",
        "--events",
        help="Event types, comma-separated, or * for all: compliance.level_changed, "
        "document.expiring, filing.due_soon, filing.overdue, job_run.failed, email.bounced.",
    ),
    description: str | None = typer.Option(None, "--description", help="A note for people."),
    as_json: bool = JsonOption,
) -> None:
    """Register an endpoint and print its signing secret (shown this once: store it)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.services import webhook_endpoints as service

    made = _engine()
    tenant_id = _tenant(made, tenant)
    assert tenant_id is not None
    with session_scope(made) as session:
        endpoint, secret = service.add_endpoint(
            session, tenant_id, url, events, description=description
        )
    if as_json:
        print_json({**endpoint.as_dict(), "secret": secret})
        return
    console.print(f"added webhook endpoint {endpoint.id} for tenant {endpoint.tenant_id}")
    console.print(f"signing secret (shown once): {secret}", markup=False, highlight=False)


@webhooks_app.command("remove")
def remove_command(id: int = typer.Argument(..., help="The endpoint's id (from `list`).")) -> None:
    """Delete an endpoint with its deliveries and their attempts."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.services import webhook_endpoints as service

    with session_scope(_engine()) as session:
        service.remove_endpoint(session, id)
    console.print(f"removed webhook endpoint {id}")


def _set_enabled(id: int, enabled: bool) -> None:
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.services import webhook_endpoints as service

    with session_scope(_engine()) as session:
        changed = service.set_enabled(session, id, enabled, reason="disabled by an operator")
    state = "enabled" if enabled else "disabled"
    console.print(f"webhook endpoint {id} {state}" + ("" if changed else " (already)"))


@webhooks_app.command("enable")
def enable_command(id: int = typer.Argument(..., help="The endpoint's id.")) -> None:
    """Enable an endpoint (after a fix); `replay --endpoint ID` then resends what failed."""
    _set_enabled(id, True)


@webhooks_app.command("disable")
def disable_command(id: int = typer.Argument(..., help="The endpoint's id.")) -> None:
    """Disable an endpoint: nothing is delivered to it until it is enabled."""
    _set_enabled(id, False)


def _attempt_now(delivery_id: int) -> Any:
    """Attempt one delivery in this process, with the runtime's client and schedule."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.actors.webhooks import after_attempt, retry_policy
    from gcmc_jobs.bootstrap import configured
    from gcmc_jobs.webhooks.delivery import attempt_delivery

    with configured(settings()) as runtime:
        result = attempt_delivery(
            runtime.engine, runtime.webhook_client, delivery_id, policy=retry_policy(runtime)
        )
        if result.outcome is not None and result.outcome.retry_at is not None:
            after_attempt(runtime, result)  # its retry goes to the broker
        return result


@webhooks_app.command("test")
def send_test_command(id: int = typer.Argument(..., help="The endpoint's id.")) -> None:
    """Send a signed `webhook.test` event to one endpoint now and print its answer
    (exit 1 when it is not a 2xx)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.services import webhook_deliveries as service

    with session_scope(_engine()) as session:
        delivery_id = service.create_test_delivery(session, id)
    result = _attempt_now(delivery_id)
    response = result.response
    document = {
        "delivery_id": delivery_id,
        "status_code": response.status if response else None,
        "latency_ms": response.latency_ms if response else None,
        "body": response.kept_body if response else None,
        "error": response.error if response else "endpoint disabled",
    }
    for key, value in document.items():
        console.print(f"{key}: {value}", markup=False, highlight=False)
    if response is None or not response.ok:
        raise typer.Exit(1)


@webhooks_app.command("deliveries")
def deliveries_command(
    tenant: str | None = TenantOpt,
    endpoint: int | None = typer.Option(None, "--endpoint", help="Only this endpoint's."),
    status: str | None = typer.Option(
        None, "--status", help="Only this status: pending, sending, succeeded, failed."
    ),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """List deliveries, newest first (--json: one JSON list)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.services import webhook_deliveries as service

    if status is not None and status not in service.STATUSES:
        raise typer.BadParameter(f"{status!r}: one of {', '.join(service.STATUSES)}")
    made = _engine()
    with session_scope(made) as session:
        found = service.list_deliveries(
            session,
            tenant_id=_tenant(made, tenant),
            endpoint_id=endpoint,
            status=status,
            limit=limit,
        )
    if as_json:
        print_json([delivery.as_dict() for delivery in found])
        return
    table = Table(title=f"{len(found)} deliver(ies)")
    for column in ("id", "endpoint", "event", "type", "status", "attempts", "last"):
        table.add_column(column)
    for d in found:
        last = d.last_error or (str(d.last_status_code) if d.last_status_code else "")
        table.add_row(
            str(d.id), str(d.endpoint_id), d.event_id, d.event_type, d.status,
            str(d.attempts), last,
        )  # fmt: skip
    print_table(table)


@webhooks_app.command("attempts")
def attempts_command(
    id: int = typer.Argument(..., help="The delivery's id."), as_json: bool = JsonOption
) -> None:
    """Every attempt of one delivery: time, status code, latency, first bytes of the body."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.services import webhook_deliveries as service

    with session_scope(_engine()) as session:
        service.get_delivery(session, id)
        found = service.attempts_of(session, id)
    if as_json:
        print_json([attempt.as_dict() for attempt in found])
        return
    table = Table(title=f"{len(found)} attempt(s) of delivery {id}")
    for column in ("at", "status", "latency ms", "body / error"):
        table.add_column(column)
    for a in found:
        table.add_row(
            a.attempted_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(a.status_code or ""),
            f"{a.latency_ms:.1f}",
            (a.error or a.response_body or "")[:120],
        )
    print_table(table)


@webhooks_app.command("replay")
def replay_command(
    delivery: int | None = typer.Argument(None, help="One delivery's id."),
    all_failed: bool = typer.Option(
        False, "--all-failed", help="Every failed delivery (of --tenant / --endpoint)."
    ),
    tenant: str | None = TenantOpt,
    endpoint: int | None = typer.Option(None, "--endpoint", help="Only this endpoint's."),
) -> None:
    """Make one delivery, or every failed one, pending now with a new retry window, and
    send it to the workers."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.actors.webhooks import deliver_webhook
    from gcmc_jobs.bootstrap import configured
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.services import webhook_deliveries as service

    if (delivery is None) == (not all_failed):
        fail("give one delivery id, or --all-failed (with --tenant / --endpoint)")
    if delivery is not None and (tenant is not None or endpoint is not None):
        fail("--tenant and --endpoint only apply with --all-failed")
    made = _engine()
    with session_scope(made) as session:
        ids = service.replay(
            session, delivery_id=delivery, tenant_id=_tenant(made, tenant), endpoint_id=endpoint
        )
    if ids:
        with configured(settings()):
            for delivery_id in ids:
                deliver_webhook.send(delivery_id)
    console.print(f"replaying {len(ids)} deliver(ies)")
