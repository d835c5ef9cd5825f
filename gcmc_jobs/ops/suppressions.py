"""Operating the suppression list and the bounce intake: CSV import, DSN ingestion, and the
provider webhooks' events, applied to the database (issue 13).

The command line (``gcmc-jobs suppressions …``, ``gcmc-jobs bounces ingest``) and the admin
API call these; the SQL is in :mod:`gcmc_jobs.services.suppressions` and
:mod:`gcmc_jobs.services.bounces`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from gcmc_jobs.db.enums import SuppressionReason
from gcmc_jobs.email.addresses import bare_address
from gcmc_jobs.email.dsn import parse_dsn, read_messages
from gcmc_jobs.services import suppressions
from gcmc_jobs.services.bounces import BouncePolicy, DeliveryEvent, IngestResult, record_events

__all__ = [
    "CsvImport",
    "DsnIngest",
    "RowError",
    "import_csv",
    "ingest_dsns",
    "ingest_events",
    "parse_csv",
    "parse_reason",
]

#: Reasons an operator may give (the others are set by bounces and complaints).
_REASONS = ", ".join(r.value for r in SuppressionReason)


def parse_reason(value: str | None) -> SuppressionReason:
    """``value`` as a reason (default ``manual``); ``ValueError`` listing the reasons."""
    if value is None or not value.strip():
        return SuppressionReason.MANUAL
    try:
        return SuppressionReason(value.strip().lower())
    except ValueError:
        raise ValueError(f"unknown reason {value.strip()!r}; one of {_REASONS}") from None


@dataclass(frozen=True)
class RowError:
    """A CSV line that cannot be imported, and why."""

    line: int
    value: str
    error: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.value!r}: {self.error}"


@dataclass
class CsvImport:
    """The outcome of :func:`import_csv`: nothing is applied when there are errors, unless
    ``skip_invalid``."""

    rows: int = 0
    added: list[str] = field(default_factory=list)
    already: int = 0
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "added": len(self.added),
            "already_suppressed": self.already,
            "applied": self.applied,
            "errors": [{"line": e.line, "value": e.value, "error": e.error} for e in self.errors],
        }


def parse_csv(text: str) -> tuple[list[tuple[str, SuppressionReason]], list[RowError]]:
    """The ``(address, reason)`` rows of a CSV and the errors of the others.

    Columns: ``address`` and an optional ``reason`` (``manual`` when empty), with or without
    a header line (a first line whose first cell is ``address`` or ``email``). Blank lines and
    lines starting with ``#`` are skipped.
    """
    entries: list[tuple[str, SuppressionReason]] = []
    errors: list[RowError] = []
    if "\x00" in text:
        return [], [RowError(text[: text.index("\x00")].count("\n") + 1, "", "a NUL byte")]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:  # not CSV at all (an unterminated quote...)
        return [], [RowError(reader.line_num, "", f"not CSV: {exc}")]
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and cells[0].lower() in ("address", "email"):
            continue
        value = cells[0]
        if len(cells) > 2:
            errors.append(RowError(number, ",".join(row), "expected address[,reason]"))
            continue
        try:
            address = bare_address(value)
            reason = parse_reason(cells[1] if len(cells) > 1 else None)
        except ValueError as exc:
            errors.append(RowError(number, value, str(exc)))
            continue
        entries.append((address, reason))
    return entries, errors


def import_csv(engine: Engine, text: str, *, actor: str, skip_invalid: bool = False) -> CsvImport:
    """Suppress the addresses of a CSV (:func:`parse_csv`) in one transaction. With an invalid
    row, nothing is applied unless ``skip_invalid``."""
    entries, errors = parse_csv(text)
    outcome = CsvImport(rows=len(entries) + len(errors), errors=errors)
    if errors and not skip_invalid:
        return outcome
    with engine.begin() as connection:
        outcome.added = suppressions.add(connection, entries, actor=actor)
    outcome.already = len({a.lower() for a, _ in entries}) - len(outcome.added)
    outcome.applied = True
    return outcome


@dataclass
class DsnIngest:
    """The outcome of :func:`ingest_dsns`."""

    messages: int = 0
    not_dsn: list[str] = field(default_factory=list)
    events: int = 0
    recorded: int = 0
    duplicates: int = 0
    suppressed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "not_dsn": len(self.not_dsn),
            "events": self.events,
            "recorded": self.recorded,
            "duplicates": self.duplicates,
            "suppressed": dict(sorted(self.suppressed.items())),
        }


def ingest_dsns(
    engine: Engine,
    path: Path,
    *,
    policy: BouncePolicy,
    batch_size: int = 1_000,
    progress: Callable[[int], None] | None = None,
) -> DsnIngest:
    """Read every message under ``path`` (:func:`gcmc_jobs.email.dsn.read_messages`), and
    record the events of those that are DSNs, ``batch_size`` messages per transaction;
    ``progress`` is called with the number of messages read after each batch."""
    outcome = DsnIngest()
    pending: list[DeliveryEvent] = []

    def flush() -> None:
        with engine.begin() as connection:
            result = record_events(connection, pending, policy=policy)
        _count(outcome, result)
        pending.clear()
        if progress is not None:
            progress(outcome.messages)

    for message in read_messages(path):
        outcome.messages += 1
        events = parse_dsn(message.raw)
        if events is None:
            outcome.not_dsn.append(message.origin)
        else:
            pending.extend(events)
        if outcome.messages % batch_size == 0:
            flush()
    flush()
    return outcome


def _count(outcome: DsnIngest, result: IngestResult) -> None:
    outcome.events += result.received
    outcome.recorded += len(result.recorded)
    outcome.duplicates += result.duplicates
    outcome.suppressed.update({a: r.value for a, r in result.suppressed.items()})


def ingest_events(
    engine: Engine, events: Iterable[DeliveryEvent], *, policy: BouncePolicy
) -> IngestResult:
    """Record provider events in one transaction (the webhooks)."""
    with engine.begin() as connection:
        return record_events(connection, list(events), policy=policy)
