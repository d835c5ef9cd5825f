"""``gcmc-jobs db``: the database schema."""

from __future__ import annotations

import typer

from gcmc_jobs.cli._app import app, console, engine

db_app = typer.Typer(help="Manage the database schema (Alembic migrations shipped inside).")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade_command(
    revision: str = typer.Argument("head", help="Target revision; the newest by default."),
) -> None:
    """Apply the packaged migrations to GCMC_JOBS_DATABASE_URL."""
    from gcmc_jobs.db.migrate import upgrade

    target = engine()
    upgrade(target, revision)
    console.print(f"[green]database at {revision}[/]: {target.url.render_as_string()}")
