"""Per-tenant CSV exports of clients, compliance scores and filings (issue 15, item 3).

:func:`export_chunks` streams one tenant's rows as CSV text in constant memory: the query runs
on a server-side cursor (``stream_results``, ``yield_per``) and each batch of rows becomes one
chunk of text, so a million rows never sit in memory at once. :func:`export_csv` writes them to
a file; the admin API sends them as a streamed response.

Columns (values in logical form: statuses and levels lower-case, dates ``YYYY-MM-DD``,
timestamps ISO 8601; ``external_id`` is the id an import gave the row, empty otherwise). The
clients' and filings' columns are the import's, plus the platform ``id``, so an export can be
edited and imported back:

- clients: ``id``, ``external_id``, ``name``, ``email``, ``assigned_user_email``, ``is_active``;
- scores: ``client_id``, ``client_external_id``, ``client_name``, ``score``, ``level``,
  ``missing_count``, ``expired_count``, ``expiring_count``, ``overdue_count``, ``computed_at``;
- filings: ``id``, ``external_id``, ``client_id``, ``client_external_id``, ``filing_type``,
  ``period_start``, ``period_end``, ``due_date``, ``status``, ``assigned_user_email``.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any, TextIO

from sqlalchemy import Engine, Select, and_, select

from gcmc_jobs.db.tables import Id, Tables, tables_of
from gcmc_jobs.errors import InvalidPayload
from gcmc_jobs.services.imports import require_tenant

__all__ = ["EXPORTS", "export_chunks", "export_csv"]

#: What ``gcmc-jobs export --what`` accepts.
EXPORTS: tuple[str, ...] = ("clients", "scores", "filings")
#: Rows fetched from the server-side cursor at a time (one chunk of CSV text each).
BATCH_ROWS = 2000


def _query(t: Tables, tenant_id: Id, what: str) -> Select[Any]:
    keys, users, clients = t.import_keys, t.users.c, t.clients.c

    def key_of(entity: str, row_id: Any) -> Any:
        alias = keys.alias(f"{entity}_key")
        return alias, and_(
            alias.c.tenant_id == tenant_id, alias.c.entity == entity, alias.c.row_id == row_id
        )

    if what == "clients":
        key, on = key_of("clients", clients.id)
        return (
            select(
                clients.id,
                key.c.external_id,
                clients.name,
                clients.email,
                users.email.label("assigned_user_email"),
                clients.is_active,
            )
            .select_from(t.clients)
            .outerjoin(key, on)
            .outerjoin(t.users, users.id == clients.assigned_user_id)
            .where(clients.tenant_id == tenant_id)
            .order_by(clients.id)
        )
    if what == "scores":
        scores = t.compliance_scores.c
        key, on = key_of("clients", clients.id)
        return (
            select(
                scores.client_id,
                key.c.external_id.label("client_external_id"),
                clients.name.label("client_name"),
                scores.score,
                scores.level,
                scores.missing_count,
                scores.expired_count,
                scores.expiring_count,
                scores.overdue_count,
                scores.computed_at,
            )
            .select_from(t.compliance_scores)
            .join(t.clients, clients.id == scores.client_id)
            .outerjoin(key, on)
            .where(scores.tenant_id == tenant_id)
            .order_by(scores.client_id)
        )
    if what == "filings":
        filings = t.filings.c
        key, on = key_of("filings", filings.id)
        client_key, client_on = key_of("clients", filings.client_id)
        return (
            select(
                filings.id,
                key.c.external_id,
                filings.client_id,
                client_key.c.external_id.label("client_external_id"),
                filings.filing_type,
                filings.period_start,
                filings.period_end,
                filings.due_date,
                filings.status,
                users.email.label("assigned_user_email"),
            )
            .select_from(t.filings)
            .outerjoin(key, on)
            .outerjoin(client_key, client_on)
            .outerjoin(t.users, users.id == filings.assigned_user_id)
            .where(filings.tenant_id == tenant_id)
            .order_by(filings.id)
        )
    raise InvalidPayload(f"cannot export {what!r}: choose one of {', '.join(EXPORTS)}")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def export_chunks(engine: Engine, *, tenant_id: Id, what: str) -> Iterator[str]:
    """Export ``what`` (``clients``, ``scores`` or ``filings``) of tenant ``tenant_id`` as CSV
    text: the header, then one chunk per :data:`BATCH_ROWS` rows, read from a server-side
    cursor (constant memory). Raises :class:`~gcmc_jobs.errors.InvalidPayload` for an unknown
    ``what`` and :class:`~gcmc_jobs.errors.UnknownTenant` for an unknown tenant, before the
    first chunk."""
    t = tables_of(engine)
    query = _query(t, tenant_id, what)
    require_tenant(engine, tenant_id)
    return (text for _, text in _batches(engine, query))


def _batches(engine: Engine, query: Select[Any]) -> Iterator[tuple[int, str]]:
    """(rows, CSV text) per batch, the header first (0 rows)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(query.selected_columns.keys())
    yield 0, buffer.getvalue()
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(
            query
        )
        for partition in result.partitions():
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([_cell(v) for v in row] for row in partition)
            yield len(partition), buffer.getvalue()


def export_csv(
    engine: Engine,
    out: TextIO,
    *,
    tenant_id: Id,
    what: str,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write export ``what`` of tenant ``tenant_id`` to ``out`` (:func:`export_chunks`);
    ``progress`` is called with the rows written so far after each batch. Returns the number
    of rows written (the header not counted)."""
    t = tables_of(engine)
    query = _query(t, tenant_id, what)
    require_tenant(engine, tenant_id)
    rows = 0
    for count, text in _batches(engine, query):
        out.write(text)
        rows += count
        if progress is not None and count:
            progress(rows)
    return rows
