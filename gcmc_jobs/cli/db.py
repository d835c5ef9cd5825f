"""``gcmc-jobs db``: the database schema."""

from __future__ import annotations

import typer

from gcmc_jobs.cli._app import JsonOption, app, console, engine, print_json, settings
from gcmc_jobs.cli._errors import EXIT_ERROR

db_app = typer.Typer(help="Manage the database schema (Alembic migrations shipped inside).")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade_command(
    revision: str = typer.Argument("head", help="Target revision; the newest by default."),
) -> None:
    """Apply the packaged migrations to GCMC_JOBS_DATABASE_URL."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.migrate import upgrade

    target = engine()
    upgrade(target, revision)
    console.print(f"[green]database at {revision}[/]: {target.url.render_as_string()}")


@db_app.command("check")
def check_command(json_output: bool = JsonOption) -> None:
    """Compare GCMC_JOBS_DATABASE_URL with the schema mapping (GCMC_JOBS_SCHEMA_MAPPING).

    Prints "ok" and what it compared, or one line per missing or different table, column,
    type, enum value or key, with what was expected and what was found; exits 1 on any.
    """
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.check import check_schema
    from gcmc_jobs.db.mapping import load_mapping
    from gcmc_jobs.db.tables import build_tables

    current = settings()
    tables = build_tables(
        load_mapping(current.schema_mapping), managed=current.platform_tables == "managed"
    )
    target = engine(current)
    try:
        report = check_schema(target, tables)
    finally:
        target.dispose()
    if json_output:
        print_json(report.as_dict())
    else:
        for problem in report.problems:
            typer.echo(str(problem))
        typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(EXIT_ERROR)
