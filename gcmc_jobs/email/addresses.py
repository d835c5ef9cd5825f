"""Email addresses: the one way the package validates, normalises and encodes them.

Every address the package takes (a recipient, an address inside a payload) goes through
:func:`normalize_address` once, when the email is sent, in the caller:

* it must be a **bare** address (``jane@example.com``): a display name and angle brackets
  (``"a@b.c" <evil@x.com>``), a quoted local part, an IP literal or surrounding text are
  refused, so what the host passes is what is mailed;
* it is **normalised**: surrounding whitespace stripped, Unicode NFC, the domain in its
  canonical form, and the whole address lowercased. Addresses are compared case-insensitively
  everywhere (dedup keys, rate limits, suppressions, digests), and the lowercased form is the
  one mailed, keyed and recorded in ``email_log``.

Internationalised addresses are accepted. :func:`envelope_address` is what goes on the wire:
a non-ASCII *domain* becomes its IDNA form (``müller.example`` → ``xn--mller-kva.example``),
which every server accepts; a non-ASCII *local part* needs a server that offers SMTPUTF8
(:func:`needs_smtputf8`), and without one that email fails for good.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from gcmc_jobs.errors import InvalidPayload

__all__ = ["bare_address", "envelope_address", "needs_smtputf8", "normalize_address"]


def _validated(value: str) -> tuple[str, str]:
    """``(normalised address, ASCII domain)``; ``ValueError`` saying what is wrong."""
    try:
        result = validate_email(
            value.strip(),
            check_deliverability=False,
            allow_smtputf8=True,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
        )
    except EmailNotValidError as exc:
        raise ValueError(f"must be a bare email address such as jane@example.com ({exc})") from None
    return result.normalized.lower(), (result.ascii_domain or result.domain).lower()


def bare_address(value: str) -> str:
    """The normalised form of ``value`` (see the module docstring); ``ValueError`` otherwise.

    For pydantic validators (``AfterValidator``): pydantic names the field in the error.
    """
    return _validated(value)[0]


def normalize_address(value: object, *, field: str = "to") -> str:
    """The normalised form of the bare address ``value`` (see the module docstring).

    Raises :class:`~gcmc_jobs.errors.InvalidPayload` naming ``field`` for anything else.
    """
    if not isinstance(value, str):
        kind = type(value).__name__
        raise InvalidPayload(f"{field}: must be an email address string, got {kind}")
    try:
        return _validated(value)[0]
    except ValueError as exc:
        raise InvalidPayload(f"{field}: {value!r} {exc}") from None


def needs_smtputf8(address: str) -> bool:
    """True when ``address`` has a non-ASCII local part: only an SMTPUTF8 server takes it."""
    return not address.rpartition("@")[0].isascii()


def envelope_address(address: str) -> str:
    """``address`` as it goes on the wire: its domain in IDNA (ASCII) form.

    The local part is kept as it is (non-ASCII only with SMTPUTF8, see
    :func:`needs_smtputf8`). An address that is not valid is returned unchanged (the caller
    validated it; a server will refuse it with a 5xx).
    """
    if address.isascii():
        return address
    try:
        _, ascii_domain = _validated(address)
    except ValueError:
        return address
    return f"{address.rpartition('@')[0]}@{ascii_domain}"
