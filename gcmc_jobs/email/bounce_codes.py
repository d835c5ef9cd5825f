"""Which SMTP replies and delivery status codes mean "this mailbox does not exist".

RFC 3463 enhanced status codes: ``5.1.1`` bad destination mailbox, ``5.1.10`` recipient
address has a null MX (RFC 7505), ``5.1.2`` bad destination system, ``5.1.3`` bad address
syntax, ``5.1.6`` mailbox has moved, ``5.2.1`` mailbox disabled. A reply without an enhanced
code counts when it is a 550/551/553 whose text says so ("no such user", "user unknown", …).
Anything else that is permanent (a full mailbox, a policy refusal, a message too large) is a
soft bounce: counted, and suppressing only after repeats (:mod:`gcmc_jobs.services.bounces`).
"""

from __future__ import annotations

import re

__all__ = ["MAILBOX_UNKNOWN_STATUSES", "enhanced_status", "mailbox_does_not_exist"]

#: Enhanced status codes that mean the address cannot receive mail, ever.
MAILBOX_UNKNOWN_STATUSES = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"})

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_NO_SUCH_USER = re.compile(
    r"no such (user|mailbox|recipient)|user(name)? unknown|unknown (user|recipient|mailbox)"
    r"|mailbox (not found|unavailable|does not exist)|does not exist|invalid (recipient|mailbox)"
    r"|recipient address rejected|address rejected|not a valid mailbox|no mailbox",
    re.IGNORECASE,
)


def enhanced_status(text: str) -> str | None:
    """The first enhanced status code (``5.1.1``) in ``text``, or None."""
    match = _ENHANCED.search(text)
    return ".".join(match.groups()) if match else None


def mailbox_does_not_exist(code: int | None, text: str) -> bool:
    """True when an SMTP reply (``code`` and its text) or a DSN's status says the mailbox does
    not exist (module docstring)."""
    status = enhanced_status(text)
    if status is not None:
        return status in MAILBOX_UNKNOWN_STATUSES
    return code in (550, 551, 553) and bool(_NO_SUCH_USER.search(text))
