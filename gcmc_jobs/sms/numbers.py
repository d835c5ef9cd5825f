"""Phone numbers: every number the SMS channel takes goes through :func:`normalize_phone`.

A number must be written in international form, ``+`` then the country code (E.164, spaces,
dots, dashes and parentheses allowed: ``+44 20 7946 0958``), and be a valid number of that
country's numbering plan; it is returned in E.164 (``+442079460958``), the form stored in
``sms_opt_ins``, ``sms_suppressions`` and ``sms_log``, used as the rate-limit key and sent to
the provider.

Why `phonenumbers <https://pypi.org/project/phonenumbers/>`_ (Google's libphonenumber) and
not a regular expression: ``^\\+[1-9]\\d{1,14}$`` accepts ``+44123`` and ``+1 555 0100 000``,
which no carrier routes; the provider then refuses them one paid request later (Twilio
21211). The library knows each country's lengths and assigned ranges, so such a number fails
here, with the reason, before any request. It is imported on first use, not at start-up.
"""

from __future__ import annotations

import re

from gcmc_jobs.errors import InvalidPhoneNumber

__all__ = ["E164", "normalize_phone"]

#: The shape of an E.164 number: ``+``, a non-zero digit, at most 15 digits in all.
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_SEPARATORS = re.compile(r"[\s.\-()]")


def normalize_phone(value: object, *, field: str = "phone") -> str:
    """``value`` in E.164 (``+15005550006``), or :class:`~gcmc_jobs.errors.InvalidPhoneNumber`
    naming ``field`` and why."""
    import phonenumbers  # deferred: ~40 ms, and only the SMS channel needs it

    if not isinstance(value, str):
        raise InvalidPhoneNumber(f"{field}: a phone number is text, got {type(value).__name__}")
    compact = _SEPARATORS.sub("", value.strip())
    if not E164.match(compact):
        raise InvalidPhoneNumber(
            f"{field}: {value!r} is not an E.164 number: write + and the country code, "
            "then at most 15 digits in all (+15005550006)"
        )
    try:
        parsed = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"{field}: {value!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(
            f"{field}: {value!r} is not a valid number of its country's numbering plan "
            f"(country code +{parsed.country_code})"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
