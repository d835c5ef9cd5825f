"""``gcmc-jobs settings``: every setting, its environment variable, value and meaning."""

from __future__ import annotations

import json
from datetime import time
from typing import Any

import typer
from pydantic import SecretStr
from rich.table import Table

from gcmc_jobs.cli._app import app, console, settings
from gcmc_jobs.redaction import MASK, redact_text
from gcmc_jobs.settings import Settings


def _shown(value: Any) -> Any:
    """A value fit to print: secrets masked (a URL keeps its scheme and host)."""
    if isinstance(value, SecretStr):
        raw = value.get_secret_value()
        return redact_text(raw) if "://" in raw else MASK
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return value


def describe(current: Settings) -> list[dict[str, Any]]:
    """One row per setting: env var, current value (secrets masked), default, description."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        rows.append(
            {
                "setting": name,
                "env": f"GCMC_JOBS_{name.upper()}",
                "value": _shown(getattr(current, name)),
                "default": _shown(default),
                "description": field.description or "",
            }
        )
    return rows


@app.command("settings")
def settings_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show every GCMC_JOBS_* setting with its current value (secrets masked) and meaning."""
    rows = describe(settings())
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table(title="gcmc-jobs settings (from GCMC_JOBS_* environment variables)")
    for column in ("env", "value", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        changed = row["value"] != row["default"]
        value = f"[bold]{row['value']}[/]" if changed else str(row["value"])
        table.add_row(row["env"], value, row["description"])
    console.print(table)
