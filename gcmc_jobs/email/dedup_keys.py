"""The deterministic dedup key of a logical email."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gcmc_jobs.email.kinds import EmailPayload

__all__ = ["email_dedup_key"]


def email_dedup_key(
    kind: str, to: str, payload: EmailPayload, *, tenant_id: int | None = None
) -> str:
    """``email:<kind>:<sha256 hex, 40 chars>`` of the kind, the lowercased recipient, the
    canonical JSON of the whole payload (secrets included, hashed: two reset links are two
    emails) and the tenant.

    The same logical email always gets the same key, so sending it twice mails once. An
    email that should go again with the same content (a second reminder) needs a key of its
    own: pass ``dedup_key=`` (e.g. ``f"invoice:{invoice_id}:reminder:{n}"``).
    """
    canonical: dict[str, Any] = {
        "kind": kind,
        "to": to.lower(),
        "tenant_id": tenant_id,
        "payload": {**payload.public_data(), **payload.secret_data()},
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return f"email:{kind}:{hashlib.sha256(text.encode()).hexdigest()[:40]}"
