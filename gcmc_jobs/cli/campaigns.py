"""``gcmc-jobs campaigns``: create, start, list, show, pause, resume and cancel campaigns
(one templated email to a segment of a tenant, with one-click unsubscribe)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from gcmc_jobs.cli._app import (
    JsonOption,
    app,
    configure_command_logging,
    console,
    fail,
    print_json,
    print_table,
    settings,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from gcmc_jobs.runtime import Runtime
    from gcmc_jobs.services.campaigns import CampaignInfo

__all__ = ["campaigns_app"]

campaigns_app = typer.Typer(
    help="Campaigns: one templated email to a segment of a tenant (every active client, or "
    "staff by role), paced below transactional mail, with one-click unsubscribe."
)
app.add_typer(campaigns_app, name="campaigns")

BodyFileOpt = typer.Option(
    None, "--body-file", exists=True, dir_okay=False, help="Read the body template from a file."
)
IdArg = typer.Argument(..., min=1, help="The campaign's id (as listed).")
_PROGRESS = ("queued", "sent", "failed", "suppressed", "unsubscribed")


@contextmanager
def _runtime(*, sends: bool = False) -> Iterator[Runtime]:
    """The configured runtime for one command; ``sends``: the command starts a dispatcher,
    which the in-process stub broker would lose when the command exits."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.bootstrap import configured

    current = settings()
    if sends and current.broker_kind == "stub":
        fail(
            "the stub broker lives inside one process: set GCMC_JOBS_BROKER_URL to the "
            "workers' broker to start or resume a campaign"
        )
    configure_command_logging(current)
    with configured(current) as runtime:
        yield runtime


def _tenant(runtime: Runtime, value: str) -> int | str:
    """A tenant id as the mapping types it (an integer on the ``gcmc`` preset)."""
    if runtime.tables.mapping.id_type == "integer":
        if not value.isdigit():
            raise typer.BadParameter(f"{value!r}: the platform's tenant ids are integers")
        return int(value)
    return value


def _print(info: CampaignInfo, as_json: bool) -> None:
    if as_json:
        print_json(info.as_dict())
        return
    p = info.progress
    console.print(
        f"campaign {info.id} [bold]{info.name}[/bold]: {info.status.value}, segment "
        f"{info.segment}, tenant {info.tenant_id}, {info.rate_per_second:g}/s, by "
        f"{info.created_by}",
        markup=True,
        highlight=False,
    )
    console.print(
        f"{p.total} recipient(s): "
        + ", ".join(f"{getattr(p, name)} {name}" for name in _PROGRESS)
        + f"; {p.opt_outs} opt-out(s) from its links",
        highlight=False,
    )


@campaigns_app.command("create")
def create_command(
    tenant: str = typer.Option(..., "--tenant", help="The tenant's id."),
    name: str = typer.Option(..., "--name", help="A name for people (1 to 200 characters)."),
    subject: str = typer.Option(
        ..., "--subject", help="Jinja2 template of the subject, e.g. 'News from {{ tenant_name }}'."
    ),
    body: str | None = typer.Option(None, "--body", help="Jinja2 template of the text body."),
    body_file: Path | None = BodyFileOpt,
    segment: str = typer.Option(
        ..., "--segment", help="clients | staff | staff:owner,admin (staff of those roles)."
    ),
    rate: float | None = typer.Option(
        None,
        "--rate",
        min=0.001,
        help="Emails per second [default: GCMC_JOBS_CAMPAIGN_RATE_PER_SECOND].",
    ),
    created_by: str = typer.Option("cli", "--created-by", help="Who creates it (recorded)."),
    start: bool = typer.Option(False, "--start", help="Start sending at once (else a draft)."),
    as_json: bool = JsonOption,
) -> None:
    """Create a campaign (a draft unless --start). Fields the templates may use:
    recipient_name, recipient_email, tenant_name, campaign_name, portal_url, support_email,
    unsubscribe_url. Templates, segment and tenant are checked before anything is stored."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops import campaigns as ops

    if (body is None) == (body_file is None):
        fail("give the body template with exactly one of --body or --body-file")
    text = body if body is not None else body_file.read_text(encoding="utf-8")  # type: ignore[union-attr]
    with _runtime(sends=start) as runtime:
        info = ops.create_campaign(
            runtime,
            tenant_id=_tenant(runtime, tenant),
            name=name,
            subject=subject,
            body=text,
            segment=segment,
            created_by=created_by,
            rate_per_second=rate,
            start=start,
        )
        _print(info, as_json)


@campaigns_app.command("start")
def start_command(campaign_id: int = IdArg) -> None:
    """Start a draft: expand its segment into recipients and send at its rate."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops import campaigns as ops

    with _runtime(sends=True) as runtime:
        _print(ops.start_campaign(runtime, campaign_id), False)


@campaigns_app.command("list")
def list_command(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's."),
    status: str | None = typer.Option(
        None, "--status", help="Only draft, running, paused, cancelled or finished ones."
    ),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """List campaigns, newest first, with their progress (--json: one JSON list)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.enums import CampaignStatus
    from gcmc_jobs.ops import campaigns as ops

    try:
        wanted = CampaignStatus(status) if status is not None else None
    except ValueError:
        raise typer.BadParameter(
            f"{status!r}: expected draft, running, paused, cancelled or finished"
        ) from None
    with _runtime() as runtime:
        found = ops.list_campaigns(
            runtime,
            tenant_id=_tenant(runtime, tenant) if tenant is not None else None,
            status=wanted,
            limit=limit,
        )
    if as_json:
        print_json([info.as_dict() for info in found])
        return
    table = Table(title=f"{len(found)} campaign(s)")
    for column in ("id", "tenant", "name", "status", "segment", "rate/s", "total", *_PROGRESS):
        table.add_column(column)
    for info in found:
        row: list[Any] = [info.id, info.tenant_id, info.name, info.status.value, info.segment]
        row += [f"{info.rate_per_second:g}", info.progress.total]
        row += [getattr(info.progress, name) for name in _PROGRESS]
        table.add_row(*map(str, row))
    print_table(table)


@campaigns_app.command("show")
def show_command(campaign_id: int = IdArg, as_json: bool = JsonOption) -> None:
    """One campaign, its templates and its progress."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops import campaigns as ops

    with _runtime() as runtime:
        info = ops.get_campaign(runtime, campaign_id)
    _print(info, as_json)
    if not as_json:
        console.print(f"subject: {info.subject_template}", markup=False, highlight=False)
        console.print(info.body_template, markup=False, highlight=False)


@campaigns_app.command("pause")
def pause_command(campaign_id: int = IdArg) -> None:
    """Pause a running campaign: nothing more is sent until `resume`."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops import campaigns as ops

    with _runtime() as runtime:
        _print(ops.pause_campaign(runtime, campaign_id), False)


@campaigns_app.command("resume")
def resume_command(campaign_id: int = IdArg) -> None:
    """Resume a paused campaign where it stopped (no address is mailed twice)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops import campaigns as ops

    with _runtime(sends=True) as runtime:
        _print(ops.resume_campaign(runtime, campaign_id), False)


@campaigns_app.command("cancel")
def cancel_command(campaign_id: int = IdArg) -> None:
    """Cancel a campaign for good: the addresses not yet mailed never are."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops import campaigns as ops

    with _runtime() as runtime:
        _print(ops.cancel_campaign(runtime, campaign_id), False)
