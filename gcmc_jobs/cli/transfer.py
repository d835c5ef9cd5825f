"""``gcmc-jobs export`` and ``gcmc-jobs import``: one tenant's data as CSV, out and in
(:mod:`gcmc_jobs.services.exports`, :mod:`gcmc_jobs.services.imports`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gcmc_jobs.cli._app import (
    app,
    console,
    engine,
    err_console,
    fail,
    settings,
)

if TYPE_CHECKING:
    from gcmc_jobs.db.tables import Tables


def _tenant(tables: Tables, tenant: str) -> Any:
    """``TENANT`` as the mapping's id type: a number on integer ids, the text otherwise."""
    if tables.mapping.id_type != "integer":
        return tenant
    try:
        return int(tenant)
    except ValueError:
        raise typer.BadParameter(f"{tenant!r}: tenant ids are integers here") from None


def _progress(label: str) -> Any:
    """A progress bar of rows on stderr (stdout may be the export itself)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn(f"[bold]{label}[/] rows"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
    )


@app.command("export")
def export_command(
    tenant: Annotated[str, typer.Argument(help="The tenant's id.")],
    what: Annotated[str, typer.Option("--what", help="clients, scores or filings.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            dir_okay=False,
            help="The CSV file to write (default: standard output).",
        ),
    ] = None,
) -> None:
    """Export one tenant's clients, compliance scores or filings as CSV.

    Streams from a server-side cursor: memory stays flat whatever the size. Statuses and
    levels are written lower-case, dates as YYYY-MM-DD; clients and filings carry the
    external id an import gave them, so the file can be edited and imported back.
    """
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.tables import tables_of
    from gcmc_jobs.services.exports import EXPORTS, export_csv

    if what not in EXPORTS:
        raise typer.BadParameter(
            f"{what!r}: choose one of {', '.join(EXPORTS)}", param_hint="--what"
        )
    target = engine(settings())
    try:
        tenant_id = _tenant(tables_of(target), tenant)
        if output is None:
            export_csv(target, sys.stdout, tenant_id=tenant_id, what=what)
            return
        partial = output.with_name(output.name + ".partial")
        with _progress("exporting") as progress:
            task = progress.add_task("export", total=None)
            with partial.open("w", newline="", encoding="utf-8") as out:
                rows = export_csv(
                    target,
                    out,
                    tenant_id=tenant_id,
                    what=what,
                    progress=lambda done: progress.update(task, completed=done),
                )
        partial.replace(output)
    finally:
        target.dispose()
    console.print(f"exported {rows:,} {what} rows to {output}")


@app.command("import")
def import_command(
    tenant: Annotated[str, typer.Argument(help="The tenant's id.")],
    path: Annotated[Path, typer.Argument(dir_okay=False, help="The CSV file (UTF-8).")],
    what: Annotated[str, typer.Option("--what", help="clients, documents or filings.")],
    errors: Annotated[
        Path | None,
        typer.Option(
            "--errors",
            dir_okay=False,
            help="Where to write the error report (default: next to the file, NAME.errors.csv).",
        ),
    ] = None,
) -> None:
    """Import clients, documents or filings of one tenant from a CSV file.

    Every row is validated; any invalid row writes nothing (one transaction per file), prints
    the number of problems, writes the error report (row, column, error; the header is row 1)
    and exits 1. Idempotent on the external_id column: importing the same file again changes
    nothing, a changed row updates its record. Columns: see the README, "Imports and exports".
    """
    from rich.markup import escape

    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.tables import tables_of
    from gcmc_jobs.services.imports import (
        IMPORT_ENTITIES,
        import_csv,
        require_tenant,
        write_error_report,
    )

    if what not in IMPORT_ENTITIES:
        raise typer.BadParameter(
            f"{what!r}: choose one of {', '.join(IMPORT_ENTITIES)}", param_hint="--what"
        )
    report = errors or path.with_name(f"{path.stem}.errors.csv")
    target = engine(settings())
    try:
        tenant_id = _tenant(tables_of(target), tenant)
        require_tenant(target, tenant_id)  # an unknown tenant before a long read
        if not path.is_file():
            fail(f"{escape(str(path))}: no such file")
        with path.open(newline="", encoding="utf-8-sig") as source:
            total = max(sum(1 for _ in source) - 1, 0)
            source.seek(0)
            with _progress("importing") as progress:
                task = progress.add_task("import", total=total)
                result = import_csv(
                    target,
                    source,
                    tenant_id=tenant_id,
                    entity=what,
                    progress=lambda done: progress.update(task, completed=done),
                )
    finally:
        target.dispose()
    if result.errors:
        with report.open("w", newline="", encoding="utf-8") as out:
            write_error_report(result.errors, out)
        first = result.errors[0]
        fail(
            escape(
                f"{len(result.errors):,} problem(s), nothing imported; first: row {first.row}, "
                f"{first.column or 'line'}: {first.error}. Report: {report}"
            )
        )
    console.print(
        f"imported {result.rows:,} {what} rows: {result.inserted:,} inserted, "
        f"{result.updated:,} updated, {result.unchanged:,} unchanged"
    )
