"""``/unsubscribe/{token}``: the public one-click unsubscribe of campaign email (RFC 8058),
not behind the admin token (the signed token is the authorisation).

``GET`` shows a small confirmation page and changes nothing (mail scanners and link
previewers fetch links); ``POST`` records the opt-out: the mail client's one-click request
(``List-Unsubscribe=One-Click`` in a form body) or the page's button. Recording is
idempotent: a second ``POST`` answers the same. A token that was not signed with
``GCMC_JOBS_CAMPAIGN_SECRET``, or was altered, is refused with 400 and changes nothing.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gcmc_jobs.errors import InvalidUnsubscribeToken
from gcmc_jobs.http import deps
from gcmc_jobs.ops import campaigns as ops

__all__ = ["router"]

router = APIRouter(tags=["unsubscribe"], include_in_schema=False)

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:32rem;margin:3rem auto;">
<h1 style="font-size:1.3rem;">{title}</h1>
{content}
</body></html>
"""
_INVALID = "This unsubscribe link is not valid. Use the link of the email itself, whole."


def _page(title: str, content: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=escape(title), content=content),
        status_code=status_code,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def confirm(request: Request, token: str) -> HTMLResponse:
    """The confirmation page: the address and a button that POSTs the opt-out."""
    try:
        found = ops.verify_unsubscribe(deps.runtime(request), token)
    except InvalidUnsubscribeToken:
        return _page("Unsubscribe", f"<p>{escape(_INVALID)}</p>", 400)
    return _page(
        "Unsubscribe",
        f"<p>Stop campaign email to <strong>{escape(found.address)}</strong>? Service email "
        "about your account (password resets, invoices, reminders) is not affected.</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def one_click(request: Request, token: str) -> HTMLResponse:
    """Record the opt-out (idempotent)."""
    try:
        found, _new = ops.unsubscribe(deps.runtime(request), token)
    except InvalidUnsubscribeToken:
        return _page("Unsubscribe", f"<p>{escape(_INVALID)}</p>", 400)
    return _page(
        "You are unsubscribed",
        f"<p><strong>{escape(found.address)}</strong> will receive no more campaign email "
        "from this sender.</p>",
    )
