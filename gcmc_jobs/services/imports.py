"""CSV imports of clients, documents and filings into one tenant (issue 15, item 3).

:func:`import_csv` reads a CSV file (a header, then one row per record) and writes it into the
platform's table of the engine's mapping, so that:

- **every row is validated**, and every problem is reported as a :class:`RowError` (row number
  as a spreadsheet shows it, the header being row 1; column; message): first each field in
  Python (required, length, e-mail, date, status, booleans, a duplicate external id), then the
  references in SQL, set-based (``client_external_id`` must name a client imported into the
  tenant; ``assigned_user_email`` a member of the tenant, whatever the case: when two members'
  addresses differ only in case, the first user's);
- **all or nothing per file**: one transaction, and any invalid row means nothing is written
  (:attr:`ImportResult.ok` is False and :attr:`ImportResult.errors` lists every problem);
- **idempotent on ``external_id``**: the platform's tables have no such column, so the map
  external id → row id is the package's ``import_keys`` table. Re-importing the same file
  changes nothing; a changed row updates its record (only the columns the file has); a new
  external id inserts one. A key whose record the platform deleted is stale: the row is
  inserted again and the key moved;
- **set-based**: the rows are copied into a temporary table with ``COPY``, each reference is
  checked with one anti-join, then one statement merges them (:func:`_merge`: data-modifying
  CTEs that insert the new records and their keys, move stale keys and update the changed
  records): the number of statements does not grow with the file (PostgreSQL only).

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
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Subquery,
    Table,
    Text,
    and_,
    cast,
    exists,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import REGCLASS
from sqlalchemy.schema import CreateTable

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
    address = value.strip()
    if not address:
        return None
    if len(address) > 320:
        raise ValueError("longer than 320 characters")
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
    """The temporary table the file is copied into: the row number, then one column per
    field of the file, in its order (:func:`_stage_columns`): the external id, a target's
    column in its own type, a reference as read (resolved by the merge)."""
    target = t.table(entity)
    columns: list[Column[Any]] = [Column("line", Integer, nullable=False)]
    for f in fields:
        if f.column is not None:
            columns.append(Column(f.column, target.c[f.column].type))
        elif f.ref is not None:
            columns.append(Column(f.name, Text))
        else:
            columns.append(Column(f.name, String(200), nullable=False))
    return Table(
        _STAGE,
        MetaData(),
        *columns,
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def _stage_columns(present: list[_Field]) -> list[str]:
    """The stage's columns, in the order of the rows :func:`_parsed_rows` yields."""
    return ["line", *(f.column or f.name for f in present)]


def _parsed_rows(
    t: Tables,
    entity: str,
    header: list[str],
    present: list[_Field],
    reader: Iterator[list[str]],
    errors: list[RowError],
    progress: Callable[[int], None] | None,
    counter: list[int],
) -> Iterator[list[Any]]:
    """The file's valid rows as stage rows (line, then one value per field: :func:`
    _stage_columns`); each invalid field goes to ``errors``.

    The loop runs once per row of files of 100,000 rows and more, so what can be worked out
    once is: each field's position, parser, default and enum map are looked up before it."""
    width = len(header)
    position: dict[str, int] = {}
    for i, h in enumerate(header):
        position.setdefault(h.strip(), i)
    target = t.table(entity)
    # Per field: where it is in the file, how it parses, and how a value is stored (the
    # column's default for an empty optional value, enums as the mapping's physical value).
    plan: list[tuple[int, Callable[[str], Any], bool, str, Any, dict[str, str] | None]] = []
    for f in present:
        column_type = target.c[f.column].type if f.column is not None else None
        physical = dict(column_type.values) if isinstance(column_type, MappedEnum) else None
        default = _DEFAULTS.get(f.column) if f.column is not None else None
        plan.append((position[f.name], f.parse, f.required, f.name, default, physical))
    names = [f.name for f in present]
    at_external = position["external_id"]
    external = 1 + names.index("external_id")  # the external id's index in a stage row
    period = (
        (1 + names.index("period_start"), 1 + names.index("period_end"))
        if "period_start" in names and "period_end" in names
        else None
    )
    first_line: dict[str, int] = {}
    for number, raw in enumerate(reader, start=2):
        # A blank line is no record. The external id is required, so only a row whose
        # external id is blank (or of the wrong width) may be one.
        if (len(raw) != width or not raw[at_external].strip()) and not "".join(raw).strip():
            continue
        counter[0] += 1
        if progress is not None and counter[0] % _PROGRESS_EVERY == 0:
            progress(counter[0])
        if len(raw) != width:
            errors.append(RowError(number, "", f"{len(raw)} fields where the header has {width}"))
            continue
        row: list[Any] = [number]
        bad = False
        for at, parse, required, name, default, physical in plan:
            try:
                value = parse(raw[at])
            except ValueError as exc:
                errors.append(RowError(number, name, str(exc)))
                bad = True
                value = None
            else:
                if value is None:
                    if required:
                        errors.append(RowError(number, name, "required"))
                        bad = True
                    else:
                        value = default
                elif physical is not None:
                    value = physical[value]
            row.append(value)
        key = row[external]
        if key is not None and first_line.setdefault(key, number) != number:
            errors.append(
                RowError(number, "external_id", f"{key!r} already appears in row {first_line[key]}")
            )
            bad = True
        if period is not None:
            start, end = row[period[0]], row[period[1]]
            if start is not None and end is not None and start > end:
                errors.append(RowError(number, "period_end", "before period_start"))
                bad = True
        if bad or errors:
            # Once the file is known bad nothing is written: stop staging, keep validating.
            continue
        yield row


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
        # One import per tenant at a time (two files with the same new external id would
        # both insert it): the lock is taken in the statement that finds the tenant.
        found = connection.scalar(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"gcmc-import:{tenant_id}", 0)))
            .select_from(t.tenants)
            .where(t.tenants.c.id == tenant_id)
        )
        if found is None:
            raise UnknownTenant(f"unknown tenant {tenant_id}: no tenant has this id")
        stage = _stage_table(t, entity, present)
        connection.execute(CreateTable(stage))  # dropped at the commit, or the rollback
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
            connection.rollback()
            return result
        result.inserted, result.updated = _merge(
            connection, t, stage, entity, present, tenant_id, now
        )
        result.unchanged = result.rows - result.inserted - result.updated
    return result


def _copy(
    connection: Connection, stage: Table, names: list[str], rows: Iterator[list[Any]]
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


# -- references and the merge -------------------------------------------------------------


def _client_keys(t: Tables, tenant_id: Id) -> Subquery:
    """The tenant's imported clients whose record still exists: external id → client id."""
    keys, clients = t.import_keys.c, t.clients.c
    return (
        select(keys.external_id, keys.row_id)
        .join_from(t.import_keys, t.clients, clients.id == keys.row_id)
        .where(
            keys.tenant_id == tenant_id, keys.entity == "clients", clients.tenant_id == tenant_id
        )
        .subquery("client_keys")
    )


def _members(t: Tables, tenant_id: Id) -> Subquery:
    """The tenant's members by lower-case e-mail (one user each: two users whose addresses
    differ only in case resolve to the first)."""
    users, members = t.users.c, t.tenant_users.c
    email = func.lower(users.email)
    return (
        select(email.label("email"), func.min(users.id).label("id"))
        .join_from(t.users, t.tenant_users, members.user_id == users.id)
        .where(members.tenant_id == tenant_id)
        .group_by(email)
        .subquery("members")
    )


def _references(
    t: Tables, stage: Table, present: list[_Field], tenant_id: Id
) -> list[tuple[_Field, Subquery, ColumnElement[bool]]]:
    """Per reference field of the file: the relation it resolves against and the join
    condition with the stage (the resolved id is the relation's ``row_id`` or ``id``)."""
    s = stage.c
    found: list[tuple[_Field, Subquery, ColumnElement[bool]]] = []
    for f in present:
        if f.ref == "client":
            keys = _client_keys(t, tenant_id)
            found.append((f, keys, keys.c.external_id == s.client_external_id))
        elif f.ref == "user":
            members = _members(t, tenant_id)
            found.append((f, members, members.c.email == func.lower(s.assigned_user_email)))
    return found


def _reference_errors(
    connection: Connection, t: Tables, stage: Table, present: list[_Field], tenant_id: Id
) -> list[RowError]:
    """The rows whose reference names nothing in the tenant: one anti-join per reference."""
    errors: list[RowError] = []
    s = stage.c
    for f, relation, joined in _references(t, stage, present, tenant_id):
        value = s[f.name]
        missing = connection.execute(
            select(s.line, value)
            .where(value.is_not(None), ~exists().select_from(relation).where(joined))
            .order_by(s.line)
        )
        if f.ref == "client":
            errors.extend(
                RowError(line, f.name, f"no client imported into this tenant as {name!r}")
                for line, name in missing
            )
        else:
            errors.extend(
                RowError(line, f.name, f"no member of this tenant has the e-mail {email!r}")
                for line, email in missing
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
    # As a regclass, so that the name is looked up once, not once per row.
    return func.nextval(cast(literal(sequence), REGCLASS))


def _merge(
    connection: Connection,
    t: Tables,
    stage: Table,
    entity: str,
    present: list[_Field],
    tenant_id: Id,
    now: datetime,
) -> tuple[int, int]:
    """Merge the validated stage into the target in one statement; (inserted, updated).

    Its parts are data-modifying CTEs, on one snapshot, each writing rows no other part
    writes: ``source`` (the stage with its references resolved and its known record: a key
    whose record is still in the tenant; inlined where used) → ``fresh`` (the others, each
    drawing its new id once: materialized) → the target's ``INSERT``, the keys' ``INSERT``
    (no key yet) and ``UPDATE`` (a stale key moved: its record was deleted) → the ``UPDATE``
    of the known records that changed (only the columns the file has). Plain inserts rather
    than an upsert: the keys of a tenant are written only here, under the tenant's lock (a
    conflict all the same would fail the import, which writes nothing then), and ``ON
    CONFLICT`` made the keys' insert ~3x as costly."""
    target, s = t.table(entity), stage.c
    keys, tenant = t.import_keys, literal(tenant_id, t.import_keys.c.tenant_id.type)
    instant = t.instant(now)
    known_key, live = t.import_keys.alias("known_key"), target.alias("live")
    joined = stage.outerjoin(
        known_key,
        and_(
            known_key.c.tenant_id == tenant_id,
            known_key.c.entity == entity,
            known_key.c.external_id == s.external_id,
        ),
    ).outerjoin(live, and_(live.c.id == known_key.c.row_id, live.c.tenant_id == tenant_id))
    columns = [f.column for f in present if f.column is not None]
    values: list[Any] = [s[c] for c in columns]
    for f, relation, condition in _references(t, stage, present, tenant_id):
        assert f.ref is not None
        joined = joined.outerjoin(relation, condition)
        values.append(
            (relation.c.row_id if f.ref == "client" else relation.c.id).label(_REF_COLUMN[f.ref])
        )
        columns.append(_REF_COLUMN[f.ref])
    source = (
        select(
            s.external_id,
            *values,
            known_key.c.row_id.label("key_row_id"),
            live.c.id.label("known_id"),
        )
        .select_from(joined)
        .cte("source")
        .prefix_with("NOT MATERIALIZED")
    )
    fresh = (
        select(
            _new_id(connection, t, entity).label("id"),
            *(c for c in source.c if c.name != "known_id"),
        )
        .where(source.c.known_id.is_(None))
        .cte("fresh")
        .prefix_with("MATERIALIZED")
    )
    extra = t.extra_columns.get(entity, ())
    inserted = target.insert().from_select(
        ["id", "tenant_id", *columns, *extra],
        select(
            fresh.c.id,
            literal(tenant_id, target.c.tenant_id.type),
            *(fresh.c[c] for c in columns),
            *(literal(instant, target.c[k].type) for k in extra),
        ),
    )
    keys_added = keys.insert().from_select(
        ["tenant_id", "entity", "external_id", "row_id", "updated_at"],
        select(
            tenant,
            literal(entity, keys.c.entity.type),
            fresh.c.external_id,
            fresh.c.id,
            literal(now, keys.c.updated_at.type),
        ).where(fresh.c.key_row_id.is_(None)),
    )
    keys_moved = (
        update(keys)
        .values(row_id=fresh.c.id, updated_at=now)
        .where(
            keys.c.tenant_id == tenant_id,
            keys.c.entity == entity,
            keys.c.external_id == fresh.c.external_id,
            fresh.c.key_row_id.is_not(None),
        )
    )
    changed = tuple_(*(target.c[c] for c in columns)).is_distinct_from(
        tuple_(*(source.c[c] for c in columns))
    )
    stamps = {k: v for k, v in t.timestamps(entity, instant).items() if k == "updated_at"}
    updated = (
        update(target)
        .values({**{c: source.c[c] for c in columns}, **stamps})
        .where(target.c.id == source.c.known_id, target.c.tenant_id == tenant_id, changed)
        .returning(target.c.id)
        .cte("updated")
    )
    counts = select(
        select(func.count()).select_from(fresh).scalar_subquery(),
        select(func.count()).select_from(updated).scalar_subquery(),
    ).add_cte(inserted.cte("inserted"), keys_added.cte("keys_added"), keys_moved.cte("keys_moved"))
    row = connection.execute(counts).one()
    return int(row[0]), int(row[1])


def write_error_report(errors: Iterable[RowError], out: TextIO) -> None:
    """Write ``errors`` to ``out`` as CSV: ``row,column,error``."""
    writer = csv.writer(out)
    writer.writerow(("row", "column", "error"))
    for e in errors:
        writer.writerow((e.row, e.column, e.error))
