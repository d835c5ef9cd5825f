"""The seed data generator: realistic, reproducible rows of whole tenants, as plain tuples.

Pure data: nothing here touches a database. :func:`generate` yields one :data:`Batch` per
tenant, each from its own random stream (``Random(f"{seed}:{tenant number}")``), so the same
``seed``, sizes and day give the same rows, and tenants do not depend on each other. Dates
are relative to each tenant's local "today" at ``now``. What one tenant gets:

- a timezone from :data:`TIMEZONES` (round robin), about 16 members with every role, ~8 %
  of them inactive and ~10 % with a notification category turned off;
- ``clients_per_tenant`` clients (~5 % inactive, most with an assigned member), each with a
  health profile (good, average, poor) that sets how often its documents and filings are in
  trouble, so scores spread over every risk level;
- 8 to 12 documents per client (~10): latest versions in every status, ~2 % with no version at
  all, ~5 % with an older superseded version; expiry dates from ten years ago to ten years
  ahead, including exactly today + 30, 14, 7, 3 and 1 (the email warning days);
- 3 to 7 filings per client (~5) in every status, due from a year ago to a year ahead, including
  exactly today + 14, 7, 3, 0 and 1 to 7 days overdue (the reminder days);
- a few addresses on the email suppression list, with every reason.

Ids are taken from :class:`Ids`, which starts after the largest id already in each table
(:func:`gcmc_jobs.seeding.load.next_ids` reads them), so seeding twice adds a second data
set. :mod:`gcmc_jobs.seeding.load` writes the batches.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gcmc_jobs.db.enums import (
    DocumentStatus,
    FilingStatus,
    NotificationCategory,
    Role,
    SuppressionReason,
)

__all__ = ["COLUMNS", "ID_COLUMNS", "TABLES", "TIMEZONES", "Batch", "Ids", "generate"]


#: Timezones tenants get, in turn: both sides of UTC, half-hour offsets, both hemispheres.
TIMEZONES = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Pacific/Auckland",
    "America/Sao_Paulo",
)

#: How many members of each role a tenant gets.
ROLE_COUNTS = (
    (Role.OWNER, 1),
    (Role.ADMIN, 2),
    (Role.MANAGER, 2),
    (Role.STAFF, 8),
    (Role.VIEWER, 3),
)

#: The tables in load order (logical names), with the logical columns each row tuple holds.
#: Ids are integers here; :mod:`gcmc_jobs.seeding.load` writes them in the mapping's id type.
COLUMNS: dict[str, tuple[str, ...]] = {
    "tenants": ("id", "name", "timezone", "is_active"),
    "users": ("id", "email", "name", "is_active"),
    "tenant_users": ("tenant_id", "user_id", "role"),
    "notification_preferences": ("user_id", "tenant_id", "category", "in_app", "email"),
    "clients": ("id", "tenant_id", "name", "email", "assigned_user_id", "is_active"),
    "documents": ("id", "tenant_id", "client_id", "title", "document_type", "latest_version_id"),
    "document_versions": ("id", "document_id", "status", "expiry_date"),
    "filings": (
        "id",
        "tenant_id",
        "client_id",
        "filing_type",
        "period_start",
        "period_end",
        "due_date",
        "status",
        "assigned_user_id",
    ),
    "email_suppressions": ("address", "reason", "created_at"),
}
#: The columns that hold an id (of this or another seeded table).
ID_COLUMNS = frozenset(
    (
        "id",
        "tenant_id",
        "user_id",
        "client_id",
        "document_id",
        "latest_version_id",
        "assigned_user_id",
    )
)
TABLES = tuple(COLUMNS)

FIRM_WORDS = ("Harbor", "Summit", "Ledger", "Crescent", "Oak", "Meridian", "Beacon", "Granite")
FIRM_KINDS = ("CPA", "Accounting", "Tax Partners", "Advisory", "& Co.")
CLIENT_WORDS = (
    "Northwind", "Bluebird", "Acorn", "Riverside", "Copper", "Maple", "Lumen", "Vertex",
    "Juniper", "Pioneer", "Silverline", "Harvest", "Orchid", "Falcon", "Cobalt", "Willow",
)  # fmt: skip
CLIENT_KINDS = ("Bakery", "Logistics", "Dental", "Studio", "Holdings", "Farms", "Clinic", "Labs")
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Emma", "Femi", "Grace", "Hiro", "Ines", "Jon")
LAST_NAMES = ("Okafor", "Smith", "Tanaka", "Dubois", "Garcia", "Kowalski", "Nguyen", "Patel")
DOCUMENT_TYPES = (
    ("Business license", "license"),
    ("Certificate of insurance", "insurance"),
    ("Professional registration", "registration"),
    ("Photo ID of director", "identity"),
    ("Proof of address", "address"),
    ("Bank mandate", "banking"),
    ("VAT registration certificate", "tax"),
    ("Engagement letter", "engagement"),
    ("Anti-money-laundering check", "aml"),
    ("Lease agreement", "lease"),
    ("Articles of incorporation", "incorporation"),
    ("Payroll authorization", "payroll"),
)
FILING_TYPES = ("vat_return", "payroll", "annual_accounts", "corporation_tax", "sales_tax")

# Health profiles: (document status weights, expiry kind weights, past-due filing status
# weights). Status order: approved, pending_review, rejected, no version.
_STATUSES = (DocumentStatus.APPROVED, DocumentStatus.PENDING_REVIEW, DocumentStatus.REJECTED, None)
# Expiry kinds: none, long past, recently past, a warning day, within 30 days, future, far.
_EXPIRY_KINDS = ("none", "long_past", "past", "warning", "soon", "future", "far")
_FILING_STATUSES = tuple(FilingStatus)
_PROFILES = {
    "good": ((94, 4, 1, 1), (35, 1, 1, 2, 3, 46, 12), (1, 1, 10, 85, 3)),
    "average": ((85, 8, 4, 3), (30, 3, 3, 3, 5, 44, 12), (4, 3, 13, 75, 5)),
    "poor": ((65, 17, 10, 8), (25, 8, 8, 4, 9, 36, 10), (12, 10, 15, 55, 8)),
}
_PROFILE_NAMES = ("good", "average", "poor")
_PROFILE_WEIGHTS = (60, 30, 10)
WARNING_DAYS = (30, 14, 7, 3, 1)
REMINDER_DAYS = (14, 7, 3, 0, -1, -2, -3, -5, -7)
_OPEN_FUTURE_WEIGHTS = (45, 25, 15, 10, 5)
#: The first client of every tenant has exactly these documents (latest version status, expiry
#: in days from today) and filings (status, due in days from today): every status, every
#: warning and reminder day, whatever the random draw.
SHOWCASE_DOCUMENTS: tuple[tuple[DocumentStatus | None, int | None], ...] = (
    *((DocumentStatus.APPROVED, days) for days in WARNING_DAYS),
    (DocumentStatus.APPROVED, 0),
    (DocumentStatus.APPROVED, -1),
    (DocumentStatus.APPROVED, 365),
    (DocumentStatus.APPROVED, None),
    (DocumentStatus.PENDING_REVIEW, 14),
    (DocumentStatus.REJECTED, -400),
    (None, None),
)
SHOWCASE_FILINGS: tuple[tuple[FilingStatus, int], ...] = (
    *((FilingStatus.DRAFT, days) for days in REMINDER_DAYS),
    (FilingStatus.PREPARED, -10),
    (FilingStatus.SUBMITTED, -3),
    (FilingStatus.ACCEPTED, -30),
    (FilingStatus.REJECTED, 5),
)


#: One tenant's rows: table name → row tuples in :data:`COLUMNS` order.
Batch = dict[str, list[tuple[Any, ...]]]


def _cumulative(weights: Sequence[int]) -> list[int]:
    total, out = 0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


_PROFILE_CUM = {name: tuple(_cumulative(w) for w in weights) for name, weights in _PROFILES.items()}
_FUTURE_FILING_CUM = _cumulative(_OPEN_FUTURE_WEIGHTS)


class Ids:
    """The next free id of each table with an ``id`` column (``next_ids`` maps table name
    to its first free id)."""

    def __init__(self, next_ids: Mapping[str, int]) -> None:
        self.next: dict[str, int] = dict(next_ids)

    def take(self, table: str, count: int) -> int:
        """Reserve ``count`` ids of ``table``; returns the first."""
        first = self.next[table]
        self.next[table] = first + count
        return first


def _tenant_rows(
    rng: random.Random, ids: Ids, number: int, clients_per_tenant: int, now: datetime
) -> Batch:
    """Every row of one tenant, per table name, as tuples in :data:`COLUMNS` order."""
    rows: Batch = {table: [] for table in TABLES}
    tenant_id = ids.take("tenants", 1)
    zone = TIMEZONES[number % len(TIMEZONES)]
    today = now.astimezone(ZoneInfo(zone)).date()
    firm = f"{rng.choice(FIRM_WORDS)} {rng.choice(FIRM_KINDS)}"
    rows["tenants"].append((tenant_id, firm, zone, True))
    domain = f"firm{tenant_id}.example"

    # Members: every role; some inactive, some with a category turned off.
    members: dict[Role, list[int]] = {}
    for role, count in ROLE_COUNTS:
        for _ in range(count):
            user_id = ids.take("users", 1)
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            active = role is Role.OWNER or rng.random() >= 0.08
            rows["users"].append((user_id, f"user{user_id}@{domain}", name, active))
            rows["tenant_users"].append((tenant_id, user_id, role.value))
            members.setdefault(role, []).append(user_id)
            if rng.random() < 0.10:
                category = rng.choice(tuple(NotificationCategory))
                in_app, email = rng.choice(((False, True), (True, False), (False, False)))
                rows["notification_preferences"].append(
                    (user_id, tenant_id, category.value, in_app, email)
                )
            if rng.random() < 0.03:
                reason = rng.choice(tuple(SuppressionReason))
                rows["email_suppressions"].append((f"user{user_id}@{domain}", reason.value, now))
    assignable = members[Role.STAFF] + members[Role.MANAGER]

    client_first = ids.take("clients", clients_per_tenant)
    doc_counts = [rng.randint(8, 12) for _ in range(clients_per_tenant)]
    filing_counts = [rng.randint(3, 7) for _ in range(clients_per_tenant)]
    if clients_per_tenant:  # the first client shows every case (see SHOWCASE_*)
        doc_counts[0], filing_counts[0] = len(SHOWCASE_DOCUMENTS), len(SHOWCASE_FILINGS)
    document_id = ids.take("documents", sum(doc_counts))
    # Versions: at most two per document (an older one for ~5 %).
    version_id = ids.take("document_versions", 2 * sum(doc_counts))
    filing_id = ids.take("filings", sum(filing_counts))
    profiles = rng.choices(_PROFILE_NAMES, weights=_PROFILE_WEIGHTS, k=clients_per_tenant)
    clients, documents, versions, filings = (
        rows["clients"],
        rows["documents"],
        rows["document_versions"],
        rows["filings"],
    )
    randint, rand, choices = rng.randint, rng.random, rng.choices
    day = timedelta(days=1)
    for index in range(clients_per_tenant):
        client_id = client_first + index
        assigned = rng.choice(assignable) if rand() < 0.85 else None
        clients.append(
            (
                client_id,
                tenant_id,
                f"{rng.choice(CLIENT_WORDS)} {rng.choice(CLIENT_KINDS)} {client_id}",
                f"client{client_id}@example.com",
                assigned,
                rand() >= 0.05,
            )
        )
        status_cum, expiry_cum, past_filing_cum = _PROFILE_CUM[profiles[index]]
        count = doc_counts[index]
        if index == 0:
            doc_specs = [
                (status, None if offset is None else today + offset * day)
                for status, offset in SHOWCASE_DOCUMENTS
            ]
        else:
            statuses = choices(_STATUSES, cum_weights=status_cum, k=count)
            kinds = choices(_EXPIRY_KINDS, cum_weights=expiry_cum, k=count)
            doc_specs = [
                (status, _expiry(kind, today, randint))
                for status, kind in zip(statuses, kinds, strict=True)
            ]
        for status, expiry in doc_specs:
            title, document_type = DOCUMENT_TYPES[randint(0, len(DOCUMENT_TYPES) - 1)]
            latest: int | None = None
            if status is not None:
                if rand() < 0.05:  # an older version, superseded by the latest
                    versions.append(
                        (version_id, document_id, "approved", today - randint(400, 2000) * day)
                    )
                    version_id += 1
                versions.append((version_id, document_id, status.value, expiry))
                latest = version_id
                version_id += 1
            documents.append((document_id, tenant_id, client_id, title, document_type, latest))
            document_id += 1
        filing_specs: list[tuple[FilingStatus, date]] = []
        if index == 0:
            filing_specs = [(st, today + offset * day) for st, offset in SHOWCASE_FILINGS]
        else:
            for _ in range(filing_counts[index]):
                due = _due(today, randint, rand)
                cum = past_filing_cum if due < today else _FUTURE_FILING_CUM
                filing_specs.append((choices(_FILING_STATUSES, cum_weights=cum)[0], due))
        for filing_status, due in filing_specs:
            period_end = due - 30 * day
            filings.append(
                (
                    filing_id,
                    tenant_id,
                    client_id,
                    FILING_TYPES[randint(0, len(FILING_TYPES) - 1)],
                    period_end - 90 * day,
                    period_end,
                    due,
                    filing_status.value,
                    rng.choice(assignable) if rand() < 0.3 else None,
                )
            )
            filing_id += 1
    # Unused reserved version ids are simply skipped: ids need not be dense.
    ids.next["document_versions"] = version_id
    if rand() < 0.5:
        rows["email_suppressions"].append(
            (f"client{client_first}@example.com", SuppressionReason.HARD_BOUNCE.value, now)
        )
    return rows


def _expiry(kind: str, today: date, randint: Callable[[int, int], int]) -> date | None:
    if kind == "none":
        return None
    if kind == "long_past":
        return today - timedelta(days=randint(366, 3650))
    if kind == "past":
        return today - timedelta(days=randint(1, 365))
    if kind == "warning":
        return today + timedelta(days=WARNING_DAYS[randint(0, len(WARNING_DAYS) - 1)])
    if kind == "soon":
        return today + timedelta(days=randint(0, 30))
    if kind == "future":
        return today + timedelta(days=randint(31, 1095))
    return today + timedelta(days=randint(1096, 3650))


def _due(today: date, randint: Callable[[int, int], int], rand: Callable[[], float]) -> date:
    roll = rand()
    if roll < 0.15:
        offset = REMINDER_DAYS[randint(0, len(REMINDER_DAYS) - 1)]
    elif roll < 0.55:
        offset = -randint(1, 365)
    elif roll < 0.90:
        offset = randint(1, 60)
    else:
        offset = randint(61, 365)
    return today + timedelta(days=offset)


def generate(
    ids: Ids, *, tenants: int, clients_per_tenant: int, seed: int, now: datetime
) -> Iterator[Batch]:
    """One :data:`Batch` per tenant, ``tenants`` of them, of ``clients_per_tenant`` clients."""
    first_tenant_number = ids.next["tenants"] - 1
    for number in range(tenants):
        rng = random.Random(f"{seed}:{number}")
        yield _tenant_rows(rng, ids, first_tenant_number + number, clients_per_tenant, now)
