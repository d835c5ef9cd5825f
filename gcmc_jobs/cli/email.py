"""``gcmc-jobs email``: look at what an email kind renders to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gcmc_jobs.cli._app import JsonOption, app, console, print_json, settings

__all__ = ["email_app"]

email_app = typer.Typer(help="Transactional email: preview the templates of each kind.")
app.add_typer(email_app, name="email")


@email_app.command("kinds")
def kinds_command(as_json: bool = JsonOption) -> None:
    """List the email kinds, their payload fields and queue."""
    from gcmc_jobs.email.registry import KINDS

    if as_json:
        print_json(
            [
                {
                    "kind": name,
                    "path": "critical" if entry.critical else "bulk",
                    "fields": list(entry.model.model_fields),
                }
                for name, entry in KINDS.items()
            ]
        )
        return
    for name, entry in KINDS.items():
        fields = ", ".join(entry.model.model_fields)
        path = "critical" if entry.critical else "bulk"
        console.print(f"[bold]{name}[/] ({path}): {fields}")


@email_app.command("preview")
def preview_command(
    kind: Annotated[str, typer.Argument(help="An email kind (gcmc-jobs email kinds lists them).")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            exists=True,
            dir_okay=False,
            help="A JSON file with the payload; the kind's sample payload by default.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            dir_okay=False,
            help="Where to write the HTML part (default: ./email-preview-KIND.html).",
        ),
    ] = None,
) -> None:
    """Render KIND (subject, text part) to the terminal and its HTML part to a file.

    Uses GCMC_JOBS_EMAIL_TEMPLATES_DIR when set, so a host application sees its overrides.
    """
    from rich.panel import Panel

    from gcmc_jobs.email.registry import get_kind, validate_payload
    from gcmc_jobs.email.rendering import render

    entry = get_kind(kind)
    if data is None:
        payload = entry.model.sample()
    else:
        try:
            raw = json.loads(data.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"cannot read {data}: {exc}", param_hint="--data") from None
        payload = validate_payload(kind, raw)
    rendered = render(kind, payload, templates_dir=settings().email_templates_dir)
    target = out or Path(f"email-preview-{kind}.html")
    target.write_text(rendered.html, encoding="utf-8")
    console.print(f"[bold]Subject:[/] {rendered.subject}")
    console.print(Panel(rendered.text, title="text part", expand=False), markup=False)
    console.print(f"HTML part written to [bold]{target.resolve()}[/]")
