"""CSV imports of clients, documents and filings into one tenant (issue 15, item 3).

:func:`import_csv` reads a CSV file (a header, then one row per record) and writes it into the
platform's table of the engine's mapping, so that:

- **every row is validated**, and every problem is reported as a :class:`RowError` (row number
  as a spreadsheet shows it, the header being row 1; column; message): first each field in
  Python (required, length, e-mail, date, status, booleans, a duplicate external id), then the
  references in SQL, set-based (``client_external_id`` must name a client imported into the
  tenant; ``assigned_user_email`` a member of the tenant);
- **all or nothing per file**: one transaction, and any invalid row means nothing is written
  (:attr:`ImportResult.ok` is False and :attr:`ImportResult.errors` lists every problem);
- **idempotent on ``external_id``**: the platform's tables have no such column, so the map
  external id → row id is the package's ``import_keys`` table. Re-importing the same file
  changes nothing; a changed row updates its record (only the columns the file has); a new
  external id inserts one. A key whose record the platform deleted is stale: the row is
  inserted again and the key moved;
- **set-based**: the rows are copied into a temporary table with ``COPY``, then merged with one
  ``UPDATE … FROM`` and one ``INSERT … SELECT`` (plus the keys' upsert): the number of
  statements does not grow with the file (PostgreSQL only).

Columns (``*`` required; ``id`` and ``client_id``, which ``gcmc-jobs export`` writes, are
ignored, so an export can be edited and imported back):

- clients: ``external_id*``, ``name*``, ``email``, ``assigned_user_email``, ``is_active``
  (true/false, yes/no, 1/0; default true);
- documents: ``external_id*``, ``client_external_id*``, ``title*``, ``document_type*`` (a
  new document has no version yet: it counts as missing until one is uploaded);
- filings: ``external_id*``, ``client_external_id*``, ``filing_type*``, ``period_start*``,
  ``period_end*``, ``due_date*`` (``YYYY-MM-DD``), ``status*`` (draft, prepared, submitted,
  accepted, rejected), ``assigned_user_email``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TextIO

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    literal,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.schema import CreateTable, DropTable

from gcmc_jobs.db.enums import FilingStatus
from gcmc_jobs.db.tables import Id, MappedEnum, Tables, new_text_id, tables_of
from gcmc_jobs.errors import ConfigurationError, InvalidPayload, UnknownTenant
from gcmc_jobs.services.tenancy import utcnow

__all__ = [
    "IMPORT_ENTITIES",
    "ImportResult",
    "RowError",
    "import_csv",
    "require_tenant",
    "write_error_report",
]

#: What ``gcmc-jobs import --what`` accepts (logical table names).
IMPORT_ENTITIES: tuple[str, ...] = ("clients", "documents", "filings")
#: Columns an export writes that an import ignores.
_IGNORED = frozenset({"id", "client_id"})
#: Rows per progress report.
_PROGRESS_EVERY = 1000


@dataclass(frozen=True)
class RowError:
    """One problem of an imported file: its ``row`` (the header is row 1), ``column`` and
    ``error`` (a sentence for a person)."""

    row: int
    column: str
    error: str


@dataclass
class ImportResult:
    """What one :func:`import_csv` did: ``rows`` read; ``inserted``, ``updated`` and
    ``unchanged`` records (all 0 when the file had errors, since then nothing is written);
    ``errors``, every problem found."""

    entity: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file was valid and written."""
        return not self.errors


# -- field parsers: a value or None (empty), ValueError with the message otherwise ---------


def _text(limit: int) -> Callable[[str], str | None]:
    def parse(value: str) -> str | None:
        value = value.strip()
        if not value:
            return None
        if len(value) > limit:
            raise ValueError(f"longer than {limit} characters")
        return value

    return parse


#: Something, ``@``, a domain with a dot; no white space (the mail server has the last word).
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _email(value: str) -> str | None:
    address = _text(320)(value)
    if address is None:
        return None
    if _EMAIL.fullmatch(address) is None:
        raise ValueError(f"{address!r} is not an e-mail address")
    return address


_BOOLEANS = {"true": True, "t": True, "yes": True, "y": True, "1": True}
_BOOLEANS |= {"false": False, "f": False, "no": False, "n": False, "0": False}


def _boolean(value: str) -> bool | None:
    value = value.strip().lower()
    if not value:
        return None
    if value not in _BOOLEANS:
        raise ValueError(f"{value!r} is not true or false")
    return _BOOLEANS[value]


def _date(value: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _status(value: str) -> str | None:
    value = value.strip().lower()
    if not value:
        return None
    try:
        return FilingStatus(value).value
    except ValueError:
        names = ", ".join(s.value for s in FilingStatus)
        raise ValueError(f"{value!r} is not a filing status ({names})") from None


@dataclass(frozen=True)
class _Field:
    """One CSV column: its header, parser, whether it is required, and where it goes: a
    column of the target table (``column``), or a reference resolved in SQL (``ref``)."""

    name: str
    parse: Callable[[str], Any]
    required: bool = False
    column: str | None = None
    ref: str | None = None  # "client" or "user"


_EXTERNAL_ID = _Field("external_id", _text(200), required=True)
_CLIENT = _Field("client_external_id", _text(200), required=True, ref="client")
_USER = _Field("assigned_user_email", _email, ref="user")

_FIELDS: dict[str, tuple[_Field, ...]] = {
    "clients": (
        _EXTERNAL_ID,
        _Field("name", _text(200), required=True, column="name"),
        _Field("email", _email, column="email"),
        _USER,
        _Field("is_active", _boolean, column="is_active"),
    ),
    "documents": (
        _EXTERNAL_ID,
        _CLIENT,
        _Field("title", _text(300), required=True, column="title"),
        _Field("document_type", _text(100), required=True, column="document_type"),
    ),
    "filings": (
        _EXTERNAL_ID,
        _CLIENT,
        _Field("filing_type", _text(100), required=True, column="filing_type"),
        _Field("period_start", _date, required=True, column="period_start"),
        _Field("period_end", _date, required=True, column="period_end"),
        _Field("due_date", _date, required=True, column="due_date"),
        _Field("status", _status, required=True, column="status"),
        _USER,
    ),
}
#: The target column a reference resolves to.
_REF_COLUMN = {"client": "client_id", "user": "assigned_user_id"}
#: Defaults of optional columns on a row that leaves them empty.
_DEFAULTS: dict[str, Any] = {"is_active": True}


def _fields(entity: str) -> tuple[_Field, ...]:
    if entity not in _FIELDS:
        raise InvalidPayload(
            f"cannot import {entity!r}: choose one of {', '.join(IMPORT_ENTITIES)}"
        )
    return _FIELDS[entity]


def _check_header(entity: str, header: list[str]) -> tuple[list[_Field], list[RowError]]:
    """The fields the file has, in its column order (None for an ignored column), and the
    header's problems (row 1)."""
    known = {f.name: f for f in _fields(entity)}
    errors: list[RowError] = []
    seen: set[str] = set()
    present: list[_Field] = []
    for name in header:
        name = name.strip()
        if name in seen:
            errors.append(RowError(1, name, "this column appears twice"))
        seen.add(name)
        if name in known:
            present.append(known[name])
        elif name not in _IGNORED:
            errors.append(RowError(1, name, f"unknown column; the columns are {', '.join(known)}"))
    for f in known.values():
        if f.required and f.name not in seen:
            errors.append(RowError(1, f.name, "required column missing"))
    return present, errors


# -- the staging table --------------------------------------------------------------------

_STAGE = "gcmc_import_stage"


def _stage_table(t: Tables, entity: str, fields: list[_Field]) -> Table:
    """The temporary table the file is copied into: the row number, the external id, the
    target's columns (its own types), and each reference as read and as resolved."""
    target = t.table(entity)
    id_type = target.c.id.type
    columns: list[Column[Any]] = [
        Column("line", Integer, nullable=False),
        Column("external_id", String(200), nullable=False),
        Column("row_id", id_type),
        Column("is_new", Boolean, nullable=False, server_default="false"),
    ]
    for f in fields:
        if f.column is not None:
            columns.append(Column(f.column, target.c[f.column].type))
        elif f.ref is not None:
            columns.append(Column(f.name, Text))
            columns.append(Column(_REF_COLUMN[f.ref], id_type))
    return Table(
        _STAGE,
        MetaData(),
        *columns,
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def _parsed_rows(
    t: Tables,
    entity: str,
    header: list[str],
    present: list[_Field],
    reader: Iterator[list[str]],
    errors: list[RowError],
    progress: Callable[[int], None] | None,
    counter: list[int],
) -> Iterator[tuple[Any, ...]]:
    """The file's valid rows as stage rows (line, external id, then one value per stage
    column); each invalid field goes to ``errors``."""
    positions = {
        f.name: next(i for i, h in enumerate(header) if h.strip() == f.name) for f in present
    }
    # Per field, how a parsed value is stored: enums as the mapping's physical value.
    physical: dict[str, dict[str, str]] = {}
    for f in present:
        column_type = t.table(entity).c[f.column].type if f.column is not None else None
        if isinstance(column_type, MappedEnum):
            physical[f.name] = dict(column_type.values)
    first_line: dict[str, int] = {}
    for number, raw in enumerate(reader, start=2):
        if not any(cell.strip() for cell in raw):
            continue  # a blank line is no record
        counter[0] += 1
        if progress is not None and counter[0] % _PROGRESS_EVERY == 0:
            progress(counter[0])
        if len(raw) != len(header):
            errors.append(
                RowError(number, "", f"{len(raw)} fields where the header has {len(header)}")
            )
            continue
        values: dict[str, Any] = {}
        bad = False
        for f in present:
            try:
                value = f.parse(raw[positions[f.name]])
            except ValueError as exc:
                errors.append(RowError(number, f.name, str(exc)))
                bad = True
                continue
            if value is None and f.required:
                errors.append(RowError(number, f.name, "required"))
                bad = True
            values[f.name] = value
        external = values.get("external_id")
        if external is not None:
            if external in first_line:
                errors.append(
                    RowError(
                        number,
                        "external_id",
                        f"{external!r} already appears in row {first_line[external]}",
                    )
                )
                bad = True
            else:
                first_line[external] = number
        start, end = values.get("period_start"), values.get("period_end")
        if start is not None and end is not None and start > end:
            errors.append(RowError(number, "period_end", "before period_start"))
            bad = True
        if bad or errors:
            # Once the file is known bad nothing is written: stop staging, keep validating.
            continue
        row: list[Any] = [number, external, None, False]
        for f in present:
            value = values[f.name]
            if value is None and f.column in _DEFAULTS:
                value = _DEFAULTS[f.column]
            if f.column is not None:
                row.append(
                    physical[f.name][value] if value is not None and f.name in physical else value
                )
            elif f.ref is not None:
                row.extend((value, None))
        yield tuple(row)


def _stage_columns(present: list[_Field]) -> list[str]:
    names = ["line", "external_id", "row_id", "is_new"]
    for f in present:
        if f.column is not None:
            names.append(f.column)
        elif f.ref is not None:
            names.extend((f.name, _REF_COLUMN[f.ref]))
    return names


# -- the import ---------------------------------------------------------------------------


def require_tenant(engine: Engine, tenant_id: Id) -> None:
    """Raise :class:`~gcmc_jobs.errors.UnknownTenant` unless tenant ``tenant_id`` exists."""
    tenant = tables_of(engine).tenants.c
    with engine.connect() as connection:
        if connection.scalar(select(tenant.id).where(tenant.id == tenant_id)) is None:
            raise UnknownTenant(f"unknown tenant {tenant_id}: no tenant has this id")


def import_csv(
    engine: Engine,
    source: TextIO | Iterable[str],
    *,
    tenant_id: Id,
    entity: str,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Import the CSV ``source`` (a text file or lines) as ``entity`` (``clients``,
    ``documents`` or ``filings``) of tenant ``tenant_id`` into ``engine``'s database, in one
    transaction (module docstring). ``progress`` is called with the number of rows read so
    far, every 1,000 rows. Returns an :class:`ImportResult`; when it has errors, nothing was
    written. Raises :class:`~gcmc_jobs.errors.InvalidPayload` for an unknown ``entity``,
    :class:`~gcmc_jobs.errors.UnknownTenant` for an unknown tenant, and
    :class:`~gcmc_jobs.errors.ConfigurationError` on a database other than PostgreSQL."""
    _fields(entity)  # an unknown entity fails before the file is read
    if engine.dialect.name != "postgresql":
        raise ConfigurationError(f"imports need PostgreSQL, not {engine.dialect.name!r}")
    t = tables_of(engine)
    now = (now or utcnow()).astimezone(UTC)
    result = ImportResult(entity)
    reader = csv.reader(source)
    header = next(reader, None)
    if header is None:
        result.errors.append(RowError(1, "", "the file is empty (no header)"))
        return result
    present, result.errors = _check_header(entity, header)
    if result.errors:
        return result
    with engine.begin() as connection:
        tenant = t.tenants.c
        if connection.scalar(select(tenant.id).where(tenant.id == tenant_id)) is None:
            raise UnknownTenant(f"unknown tenant {tenant_id}: no tenant has this id")
        # One import per tenant at a time: two files with the same new external id would
        # both insert it.
        connection.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"gcmc-import:{tenant_id}", 0)))
        )
        stage = _stage_table(t, entity, present)
        connection.execute(CreateTable(stage))
        counter = [0]
        rows = _parsed_rows(t, entity, header, present, reader, result.errors, progress, counter)
        _copy(connection, stage, _stage_columns(present), rows)
        result.rows = counter[0]
        if progress is not None:
            progress(result.rows)
        if not result.errors:
            result.errors.extend(_reference_errors(connection, t, stage, present, tenant_id))
        if result.errors:
            result.errors.sort(key=lambda e: (e.row, e.column))
            connection.execute(DropTable(stage))
            connection.rollback()
            return result
        _merge(connection, t, stage, entity, present, tenant_id, now, result)
        connection.execute(DropTable(stage))
    return result


def _copy(
    connection: Connection, stage: Table, names: list[str], rows: Iterator[tuple[Any, ...]]
) -> None:
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(n) for n in names)
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {quote(stage.name)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


def _reference_errors(
    connection: Connection, t: Tables, stage: Table, present: list[_Field], tenant_id: Id
) -> list[RowError]:
    """Resolve each reference column of the stage (two statements per reference) and report
    the rows whose reference names nothing in the tenant."""
    errors: list[RowError] = []
    s = stage.c
    for f in present:
        if f.ref == "client":
            keys, clients = t.import_keys.c, t.clients.c
            connection.execute(
                update(stage)
                .values(client_id=keys.row_id)
                .where(
                    keys.tenant_id == tenant_id,
                    keys.entity == "clients",
                    keys.external_id == s.client_external_id,
                    clients.id == keys.row_id,
                    clients.tenant_id == tenant_id,
                )
            )
            missing = connection.execute(
                select(s.line, s.client_external_id).where(s.client_id.is_(None)).order_by(s.line)
            )
            errors.extend(
                RowError(line, f.name, f"no client imported into this tenant as {value!r}")
                for line, value in missing
            )
        elif f.ref == "user":
            users, members = t.users.c, t.tenant_users.c
            connection.execute(
                update(stage)
                .values(assigned_user_id=users.id)
                .where(
                    func.lower(users.email) == func.lower(s.assigned_user_email),
                    members.user_id == users.id,
                    members.tenant_id == tenant_id,
                )
            )
            missing = connection.execute(
                select(s.line, s.assigned_user_email)
                .where(s.assigned_user_email.is_not(None), s.assigned_user_id.is_(None))
                .order_by(s.line)
            )
            errors.extend(
                RowError(line, f.name, f"no member of this tenant has the e-mail {value!r}")
                for line, value in missing
            )
    return errors


def _new_id(connection: Connection, t: Tables, entity: str) -> Any:
    """The SQL expression of a new id of ``entity`` (its sequence, or a random text/UUID)."""
    target = t.table(entity)
    if t.mapping.id_type == "text":
        return new_text_id()
    if t.mapping.id_type == "uuid":
        return func.gen_random_uuid()
    qualified = connection.dialect.identifier_preparer.format_table(target)
    sequence = connection.scalar(select(func.pg_get_serial_sequence(qualified, target.c.id.name)))
    if sequence is None:
        raise ConfigurationError(f"{qualified}.{target.c.id.name} has no sequence to draw ids from")
    return func.nextval(sequence)


def _merge(
    connection: Connection,
    t: Tables,
    stage: Table,
    entity: str,
    present: list[_Field],
    tenant_id: Id,
    now: datetime,
    result: ImportResult,
) -> None:
    """Merge the validated stage into the target: a constant number of statements."""
    target, keys, s = t.table(entity), t.import_keys, stage.c
    written = [f.column for f in present if f.column is not None]
    written += [_REF_COLUMN[f.ref] for f in present if f.ref is not None]
    instant = t.instant(now)
    # 1. The rows already imported (their key's record still in the tenant).
    connection.execute(
        update(stage)
        .values(row_id=keys.c.row_id)
        .where(
            keys.c.tenant_id == tenant_id,
            keys.c.entity == entity,
            keys.c.external_id == s.external_id,
            target.c.id == keys.c.row_id,
            target.c.tenant_id == tenant_id,
        )
    )
    # 2. New ids for the others.
    result.inserted = connection.execute(
        update(stage)
        .values(row_id=_new_id(connection, t, entity), is_new=true())
        .where(s.row_id.is_(None))
    ).rowcount
    # 3. Update the changed records (only the columns the file has).
    changed = tuple_(*(target.c[c] for c in written)).is_distinct_from(
        tuple_(*(s[c] for c in written))
    )
    stamps = {k: v for k, v in t.timestamps(entity, instant).items() if k == "updated_at"}
    result.updated = connection.execute(
        update(target)
        .values({**{c: s[c] for c in written}, **stamps})
        .where(
            target.c.id == s.row_id,
            s.is_new.is_(False),
            target.c.tenant_id == tenant_id,
            changed,
        )
    ).rowcount
    # 4. Insert the new ones.
    insert_columns = ["id", "tenant_id", *written, *t.extra_columns.get(entity, ())]
    selected = [
        s.row_id,
        literal(tenant_id, target.c.tenant_id.type),
        *(s[c] for c in written),
        *(literal(instant, target.c[k].type) for k in t.extra_columns.get(entity, ())),
    ]
    connection.execute(
        target.insert().from_select(
            [target.c[c] for c in insert_columns], select(*selected).where(s.is_new.is_(True))
        )
    )
    result.unchanged = result.rows - result.inserted - result.updated
    # 5. Record (or move) their keys.
    upsert = pg_insert(keys).from_select(
        ["tenant_id", "entity", "external_id", "row_id", "updated_at"],
        select(
            literal(tenant_id, keys.c.tenant_id.type),
            literal(entity, keys.c.entity.type),
            s.external_id,
            s.row_id,
            literal(now, keys.c.updated_at.type),
        ).where(s.is_new.is_(True)),
    )
    connection.execute(
        upsert.on_conflict_do_update(
            index_elements=["tenant_id", "entity", "external_id"],
            set_={"row_id": upsert.excluded.row_id, "updated_at": upsert.excluded.updated_at},
        )
    )


def write_error_report(errors: Iterable[RowError], out: TextIO) -> None:
    """Write ``errors`` to ``out`` as CSV: ``row,column,error``."""
    writer = csv.writer(out)
    writer.writerow(("row", "column", "error"))
    for e in errors:
        writer.writerow((e.row, e.column, e.error))
