"""``gcmc-jobs settings``: every setting, its environment variable, value and meaning."""

from __future__ import annotations

from datetime import time
from typing import TYPE_CHECKING, Any

from rich.table import Table

from gcmc_jobs.cli._app import JsonOption, app, print_json, print_table, settings

if TYPE_CHECKING:
    from gcmc_jobs.settings import Settings


def _shown(value: Any) -> Any:
    """A value fit to print: secrets masked (a URL keeps its scheme and host)."""
    from pydantic import SecretStr

    from gcmc_jobs.redaction import MASK, redact_text

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
    for name, field in type(current).model_fields.items():
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
    as_json: bool = JsonOption,
) -> None:
    """Show every GCMC_JOBS_* setting with its current value (secrets masked) and meaning."""
    rows = describe(settings())
    if as_json:
        print_json(rows)
        return
    table = Table(title="gcmc-jobs settings (from GCMC_JOBS_* environment variables)")
    for column in ("env", "value", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        changed = row["value"] != row["default"]
        value = f"[bold]{row['value']}[/]" if changed else str(row["value"])
        table.add_row(row["env"], value, row["description"])
    print_table(table)
