"""Masking secrets in logged and displayed values: :func:`redact` (used by
``gcmc-jobs dead-letters show`` and the admin API) and :func:`redact_event`, the structlog
processor applying the same rules to every log event.

A value is masked when its key names a secret (``token``, ``password``, ``secret``,
``reset_link``, ``api_key``, ``authorization``, …, matched case-insensitively as a part of the
key: ``reset_token`` and ``smtp_password`` are masked too), when it is a pydantic
``SecretStr``/``SecretBytes``, or, inside any string, when it is the credentials of a URL
(``smtp://user:pass@host`` → ``smtp://***@host``) or a secret-named query parameter
(``…?token=abc`` → ``…?token=***``), or the token segment of a reset/verify/confirm/invite
link path (``…/reset/abc`` → ``…/reset/***``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from pydantic import SecretBytes, SecretStr

__all__ = [
    "MASK",
    "SECRET_KEY_PARTS",
    "is_secret_key",
    "redact",
    "redact_event",
    "redact_text",
]

#: What a masked value becomes.
MASK = "***"

#: A key containing any of these (case-insensitive) holds a secret.
SECRET_KEY_PARTS = (
    "token",
    "password",
    "passwd",
    "secret",
    "reset_link",
    "reset_url",
    "api_key",
    "apikey",
    "authorization",
    "credential",
    "cookie",
    "session_key",
    "private_key",
)

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/@]+@")
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&;](?:[a-z_]*(?:token|password|secret|key|signature|sig|code|auth)[a-z_]*))="
    r"[^&;#\s\"']*",
    re.IGNORECASE,
)
_RESET_PATH = re.compile(
    r"(?P<path>/(?:reset|reset-password|password-reset|reset_password|verify|confirm|invite)/)"
    r"[^/?#\s\"']+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<scheme>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


_secret_names: dict[str, bool] = {}


def is_secret_key(key: object) -> bool:
    """Whether a mapping key names a secret."""
    name = key if isinstance(key, str) else str(key)
    found = _secret_names.get(name)
    if found is None:
        lowered = name.lower()
        found = any(part in lowered for part in SECRET_KEY_PARTS)
        if len(_secret_names) < 10_000:  # keys are few; never grow without bound
            _secret_names[name] = found
    return found


def redact_text(text: str) -> str:
    """``text`` with URL credentials, secret query parameters and bearer tokens masked."""
    if "://" in text:
        text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{MASK}@", text)
        text = _RESET_PATH.sub(lambda m: f"{m['path']}{MASK}", text)
    if "=" in text:
        text = _SECRET_QUERY.sub(lambda m: f"{m['name']}={MASK}", text)
    if " " in text:
        text = _BEARER.sub(lambda m: f"{m['scheme']}{MASK}", text)
    return text


_PLAIN = frozenset({int, float, bool, type(None)})


def redact(value: Any) -> Any:
    """A copy of ``value`` (mappings, lists, tuples, strings) with every secret masked."""
    # Exact-class checks first: log events are mostly flat dicts of str/int values.
    cls = value.__class__
    if cls is str:
        return redact_text(value)
    if cls in _PLAIN:
        return value
    if cls is dict or isinstance(value, Mapping):
        redacted = {}
        for key, item in value.items():
            if item is not None and is_secret_key(key):
                redacted[key] = MASK
            elif item.__class__ is str:
                redacted[key] = redact_text(item)
            elif item.__class__ in _PLAIN:
                redacted[key] = item
            else:
                redacted[key] = redact(item)
        return redacted
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, list | tuple):
        return type(value)(redact(item) for item in value)
    return value


_PLAIN_FIELDS = frozenset({int, float, bool})


def redact_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """A structlog processor masking secrets in every field (the rules of :func:`redact`).

    Keys naming a secret (``token``, ``password``, ``reset_link``, …) are masked whole;
    strings lose URL credentials, secret query parameters and reset-link tokens;
    ``SecretStr`` values are masked. Returns the event dict, masked in place.
    """
    # Runs on every event of every message, so the flat fields events are made of are
    # handled inline (the same rules as redact()): a string without "://", "=" or " "
    # holds none of the patterns redact_text masks, so the regexes are skipped for it;
    # anything else goes through redact(). structlog hands each event a fresh dict, so
    # masking in place (no copy) is safe.
    for key, value in event_dict.items():
        if value is None:
            continue
        if is_secret_key(key):
            event_dict[key] = MASK
            continue
        cls = value.__class__
        if cls is str:
            if "://" in value or "=" in value or " " in value:
                event_dict[key] = redact_text(value)
        elif cls not in _PLAIN_FIELDS:
            event_dict[key] = redact(value)
    return event_dict
