"""The typed payload of each email kind: one pydantic model per kind, with a sample.

Every model is strict about what may reach a header or a template:

* :data:`Line` fields (names, titles, statuses: anything that may end up in a subject) refuse
  every control character, C0 (CR and LF included) and C1 (U+0080 to U+009F), and the Unicode
  line and paragraph separators (U+2028, U+2029), so no payload can inject a header;
* :data:`Paragraph` fields (free text bodies) accept newlines (LF, CR) and tabs, none of the
  other characters a :data:`Line` refuses;
* addresses are :data:`EmailAddress`: bare (no display name), normalised (see
  :mod:`gcmc_jobs.email.addresses`); links are ``http(s)`` URLs;
* the password-reset link is a :class:`~pydantic.SecretStr`: it never prints, and
  :meth:`EmailPayload.public_data` / :meth:`EmailPayload.secret_data` split it from the rest
  so that the queue carries it outside the message's arguments (see ``gcmc_jobs.actors.email``).

``document_expiry_warning`` and ``filing_reminder`` carry a list of items: one email is the
day's digest for one recipient (DOMAIN.md, job 4 and 5). ``document_expiry_warning`` also
carries the day's risk-level changes of the recipient's clients (``risk_changes``): its
``items`` may be empty when those are not, never both.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from gcmc_jobs.email.addresses import bare_address

__all__ = [
    "PAYLOADS",
    "Custom",
    "DocumentExpiryItem",
    "DocumentExpiryWarning",
    "EmailAddress",
    "EmailPayload",
    "FilingReminder",
    "FilingReminderItem",
    "Invoice",
    "Line",
    "Paragraph",
    "PasswordReset",
    "RiskLevelChange",
    "ServiceRequestUpdate",
    "TaskAssignment",
    "Url",
    "Welcome",
]

#: C0 and C1 control characters (U+0000 to U+001F, U+007F to U+009F, NEL included) and the Unicode
#: line and paragraph separators (U+2028, U+2029): nothing that can end or bend a line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: The same, but for newlines (LF, CR) and tabs, which free text may hold.
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def _single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must be a single line without control characters (no CR/LF)")
    return value


def _paragraph(value: str) -> str:
    if _CONTROL_BUT_NEWLINE.search(value):
        raise ValueError("must not contain control characters other than newlines and tabs")
    return value


def _url(value: str) -> str:
    if not _URL.match(value) or _CONTROL.search(value):
        raise ValueError("must be an http:// or https:// URL")
    return value


#: One line of text (1 to 300 characters, no control characters): safe in a subject.
Line = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_single_line)]
#: Free text (up to 10,000 characters); newlines allowed, other control characters refused.
Paragraph = Annotated[str, Field(max_length=10_000), AfterValidator(_paragraph)]
#: An ``http(s)://`` URL of at most 2,000 characters.
Url = Annotated[str, Field(max_length=2_000), AfterValidator(_url)]
#: A bare email address (no display name), normalised: see :mod:`gcmc_jobs.email.addresses`.
EmailAddress = Annotated[str, AfterValidator(bare_address)]


class EmailPayload(BaseModel):
    """Base of every payload: frozen, unknown fields refused, the tenant's name required.

    ``tenant_name`` is shown in the shared layout (header and footer) of every email.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    #: The email kind this model is the payload of (set on each subclass): its name in
    #: messages, ``email_log`` rows and template file names.
    kind: ClassVar[str] = ""
    #: Security mail: travels on ``queue_names.EMAIL_CRITICAL`` (``send_security_email``) and
    #: is rate limited in the ``"security"`` class. The registry and the routing read it.
    critical: ClassVar[bool] = False

    tenant_name: Line

    @classmethod
    def sample(cls) -> Self:
        """A valid example payload, used by ``gcmc-jobs email preview`` and the tests."""
        raise NotImplementedError

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        """Names of the :class:`~pydantic.SecretStr` fields (never logged, never in args)."""
        return frozenset(
            name for name, field in cls.model_fields.items() if field.annotation is SecretStr
        )

    def public_data(self) -> dict[str, Any]:
        """The payload as JSON values, secrets left out."""
        return self.model_dump(mode="json", exclude=set(self.secret_fields()))

    def secret_data(self) -> dict[str, str]:
        """The secret fields' plain values (for the message's ``secrets`` option only)."""
        return {
            name: value.get_secret_value()
            for name in self.secret_fields()
            if isinstance(value := getattr(self, name), SecretStr)
        }

    def template_context(self) -> dict[str, Any]:
        """What the templates see: every field as a Python value, secrets revealed."""
        context = {name: getattr(self, name) for name in type(self).model_fields}
        context.update(self.secret_data())
        return context


class Welcome(EmailPayload):
    """A new client's welcome (sent when a firm creates the client)."""

    kind: ClassVar[str] = "welcome"

    client_name: Line
    portal_url: Url
    support_email: EmailAddress

    @classmethod
    def sample(cls) -> Self:
        return cls(
            tenant_name="Acme CPA",
            client_name="Jane Doe",
            portal_url="https://portal.gcmc.example/acme",
            support_email="support@acme.example",
        )


class DocumentExpiryItem(BaseModel):
    """One document of a document-expiry digest."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    title: Line
    client_name: Line
    document_type: Line
    expiry_date: date
    #: Days from the recipient's today to ``expiry_date`` (30, 14, 7, 3 or 1 by default).
    days_left: int = Field(ge=0)
    url: Url | None = None


#: A client's risk level (``compliance_scores.level``).
RiskLevel = Literal["low", "medium", "high"]


class RiskLevelChange(BaseModel):
    """One client whose risk level the day's compliance refresh changed (issue 14)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    client_name: Line
    previous_level: RiskLevel
    level: RiskLevel
    #: The client's compliance score after the refresh (0 to 100).
    score: int = Field(ge=0, le=100)
    url: Url | None = None


class DocumentExpiryWarning(EmailPayload):
    """The day's digest for one staff member: the documents that expire soon, and the
    clients whose risk level changed today (``risk_changes``). Either list may be empty,
    not both; a payload of documents only (as before ``risk_changes``) stays valid."""

    kind: ClassVar[str] = "document_expiry_warning"

    recipient_name: Line
    portal_url: Url
    items: list[DocumentExpiryItem] = Field(default_factory=list, max_length=1_000)
    risk_changes: list[RiskLevelChange] = Field(default_factory=list, max_length=1_000)

    @model_validator(mode="after")
    def _something_to_say(self) -> Self:
        if not self.items and not self.risk_changes:
            raise ValueError(
                "a document expiry digest needs at least one item or one risk change "
                "(items and risk_changes are both empty)"
            )
        return self

    @classmethod
    def sample(cls) -> Self:
        return cls(
            tenant_name="Acme CPA",
            recipient_name="Sam Staff",
            portal_url="https://portal.gcmc.example/acme",
            items=[
                DocumentExpiryItem(
                    title="Certificate of incorporation",
                    client_name="Jane Doe LLC",
                    document_type="certificate",
                    expiry_date=date(2026, 12, 29),
                    days_left=30,
                ),
                DocumentExpiryItem(
                    title="Business license",
                    client_name="Bob's Bakery",
                    document_type="license",
                    expiry_date=date(2026, 12, 6),
                    days_left=7,
                ),
            ],
            risk_changes=[
                RiskLevelChange(
                    client_name="Jane Doe LLC", previous_level="low", level="medium", score=65
                ),
            ],
        )


class FilingReminderItem(BaseModel):
    """One filing of a filing-reminder digest."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    filing_type: Line
    client_name: Line
    due_date: date
    #: Days from the recipient's today to ``due_date``; negative when overdue.
    days_until_due: int
    period_end: date | None = None
    url: Url | None = None


class FilingReminder(EmailPayload):
    """The day's digest of filings due soon or overdue, for one staff member."""

    kind: ClassVar[str] = "filing_reminder"

    recipient_name: Line
    portal_url: Url
    items: list[FilingReminderItem] = Field(min_length=1, max_length=1_000)

    @classmethod
    def sample(cls) -> Self:
        return cls(
            tenant_name="Acme CPA",
            recipient_name="Sam Staff",
            portal_url="https://portal.gcmc.example/acme",
            items=[
                FilingReminderItem(
                    filing_type="VAT return",
                    client_name="Jane Doe LLC",
                    due_date=date(2026, 12, 13),
                    days_until_due=14,
                    period_end=date(2026, 11, 30),
                ),
                FilingReminderItem(
                    filing_type="Payroll",
                    client_name="Bob's Bakery",
                    due_date=date(2026, 11, 26),
                    days_until_due=-3,
                ),
            ],
        )


class TaskAssignment(EmailPayload):
    """A task was assigned to a staff member."""

    kind: ClassVar[str] = "task_assignment"

    assignee_name: Line
    task_title: Line
    task_url: Url
    assigned_by: Line | None = None
    due_date: date | None = None
    description: Paragraph | None = None

    @classmethod
    def sample(cls) -> Self:
        return cls(
            tenant_name="Acme CPA",
            assignee_name="Sam Staff",
            task_title="Review Q4 payroll",
            task_url="https://portal.gcmc.example/acme/tasks/17",
            assigned_by="Olivia Owner",
            due_date=date(2026, 12, 4),
            description="Check the totals against the bank statements.",
        )


class ServiceRequestUpdate(EmailPayload):
    """A client's service request changed status."""

    kind: ClassVar[str] = "service_request_update"

    client_name: Line
    request_title: Line
    new_status: Line
    request_url: Url
    old_status: Line | None = None
    message: Paragraph | None = None

    @classmethod
    def sample(cls) -> Self:
        return cls(
            tenant_name="Acme CPA",
            client_name="Jane Doe",
            request_title="Register for sales tax",
            old_status="open",
            new_status="in progress",
            request_url="https://portal.gcmc.example/acme/requests/5",
            message="We have started on your registration.",
        )


class PasswordReset(EmailPayload):
    """A password-reset link: security mail, sent on the critical queue.

    ``reset_url`` is a secret: it never prints (``SecretStr``), never travels in the message's
    arguments and never appears in a log line.
    """

    kind: ClassVar[str] = "password_reset"
    critical: ClassVar[bool] = True

    user_name: Line
    reset_url: SecretStr
    expires_in_minutes: int = Field(default=60, ge=1, le=10_080)

    @field_validator("reset_url", mode="after")
    @classmethod
    def _reset_url_is_a_url(cls, value: SecretStr) -> SecretStr:
        # The message names the field, never the value.
        _url(value.get_secret_value())
        return value

    @classmethod
    def sample(cls) -> Self:
        return cls(
            tenant_name="Acme CPA",
            user_name="Sam Staff",
            reset_url=SecretStr("https://portal.gcmc.example/reset?token=sample-token"),
            expires_in_minutes=60,
        )


class Invoice(EmailPayload):
    """An invoice for a client."""

    kind: ClassVar[str] = "invoice"

    client_name: Line
    invoice_number: Line
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD.")
    due_date: date
    invoice_url: Url

    @classmethod
    def sample(cls) -> Self:
        return cls(
            tenant_name="Acme CPA",
            client_name="Jane Doe",
            invoice_number="INV-2026-0042",
            amount=Decimal("1250.00"),
            currency="USD",
            due_date=date(2026, 12, 31),
            invoice_url="https://portal.gcmc.example/acme/invoices/42",
        )


class Custom(EmailPayload):
    """Any other message: a subject and a plain-text body (shown escaped in the HTML part)."""

    kind: ClassVar[str] = "custom"

    subject: Line
    body: Paragraph = Field(min_length=1)
    recipient_name: Line | None = None
    action_url: Url | None = None
    action_label: Line | None = None

    @classmethod
    def sample(cls) -> Self:
        return cls(
            tenant_name="Acme CPA",
            subject="Office closed on Friday",
            recipient_name="Jane Doe",
            body="Our office is closed on Friday.\nWe reply to messages on Monday.",
        )


#: Every kind's payload class, in the order the registry lists them: adding a kind is adding
#: a class here (with its ``kind``, ``critical``, ``sample`` and templates).
PAYLOADS: tuple[type[EmailPayload], ...] = (
    Welcome,
    DocumentExpiryWarning,
    FilingReminder,
    TaskAssignment,
    ServiceRequestUpdate,
    PasswordReset,
    Invoice,
    Custom,
)
