"""Phone numbers: E.164, checked against each country's numbering plan."""

from __future__ import annotations

import pytest

from gcmc_jobs.errors import InvalidPayload, InvalidPhoneNumber
from gcmc_jobs.sms.numbers import normalize_phone


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("+15005550006", "+15005550006"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
        (" +33.6.12.34.56.78 ", "+33612345678"),
    ],
)
def test_an_international_number_is_returned_in_e164(written: str, e164: str) -> None:
    assert normalize_phone(written) == e164


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("4155552671", "not an E.164 number"),  # no country code
        ("0044 20 7946 0958", "not an E.164 number"),  # an international prefix, not +
        ("+0123456789", "not an E.164 number"),  # country codes do not start with 0
        ("+1234567890123456", "not an E.164 number"),  # 16 digits
        ("+1 415 555 267a", "not an E.164 number"),
        ("+44123", "not a valid number of its country's numbering plan"),
        ("+1 555 010 0000", "not a valid number of its country's numbering plan"),
        ("", "not an E.164 number"),
    ],
)
def test_a_number_that_is_not_valid_e164_is_refused_saying_why(written: str, why: str) -> None:
    with pytest.raises(InvalidPhoneNumber, match=why) as raised:
        normalize_phone(written, field="to")
    assert str(raised.value).startswith("to: ")
    # A permanent error for bad input: never retried, dead-lettered at once.
    assert isinstance(raised.value, InvalidPayload)


def test_a_value_that_is_not_text_is_refused() -> None:
    with pytest.raises(InvalidPhoneNumber, match="text"):
        normalize_phone(15005550006)
