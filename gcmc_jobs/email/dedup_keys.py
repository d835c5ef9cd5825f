"""The deterministic dedup key of a logical email, and its window.

An email sent without ``dedup_key=`` gets two keys (see ``gcmc_jobs.actors.email``):
:func:`email_dedup_key` of its content, claimed at enqueue for the dedup TTL (a sliding
window: an identical send within it is a duplicate), and :func:`windowed_key`, the same key
with the start of the TTL-long window it was sent in, which names the logical email in
``email_log``. So the same content goes again in a later window (the same reminder a month
later), while an explicit ``dedup_key=`` stays "once ever".
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from gcmc_jobs.email.kinds import EmailPayload

__all__ = ["email_dedup_key", "windowed_key"]


def email_dedup_key(
    kind: str, to: str, payload: EmailPayload, *, tenant_id: int | str | None = None
) -> str:
    """``email:<kind>:<sha256 hex, 40 chars>`` of the kind, the lowercased recipient, the
    canonical JSON of the whole payload (secrets included, hashed: two reset links are two
    emails) and the tenant.

    The same content always gets the same key: it is the enqueue-time claim that makes a
    second identical send within the dedup TTL a duplicate. Its ``email_log`` record is
    :func:`windowed_key` of it, so the same content is mailed again in a later window. An
    email that must go once ever, or again within the window (a second reminder), needs a
    key of its own: pass ``dedup_key=`` (e.g. ``f"invoice:{invoice_id}:reminder:{n}"``).
    """
    canonical: dict[str, Any] = {
        "kind": kind,
        "to": to.lower(),
        "tenant_id": tenant_id,
        "payload": {**payload.public_data(), **payload.secret_data()},
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return f"email:{kind}:{hashlib.sha256(text.encode()).hexdigest()[:40]}"


def windowed_key(key: str, *, now_ms: int, window_ms: int) -> str:
    """``key`` with the UTC start of the ``window_ms``-long window ``now_ms`` falls in (windows
    are aligned on the Unix epoch: with the default 24 h, one per UTC day), e.g.
    ``email:custom:<hash>:20261201T000000Z`` (to the second: a window is at least one)."""
    if window_ms <= 0:
        raise ValueError("window_ms must be positive")
    window_ms = max(window_ms, 1_000)
    start = datetime.fromtimestamp((now_ms // window_ms) * window_ms // 1000, UTC)
    return f"{key}:{start:%Y%m%dT%H%M%SZ}"
