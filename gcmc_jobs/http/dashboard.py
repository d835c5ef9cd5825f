"""``/dashboard``: one server-rendered page whose script reads and acts through the JSON API.

Auth: the page itself holds no data and is served to anyone; it asks for the admin token in
a sign-in form and keeps it in the tab's ``sessionStorage`` (gone when the tab closes, never
in a cookie, so no CSRF), sending it as ``Authorization: Bearer`` on every API call. It
refreshes every 5 seconds.

Its charts are drawn by uPlot (MIT, its ``LICENSE`` next to it), vendored minified in
``static/vendor/`` and served from ``/dashboard/vendor/``: no CDN at run time.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

__all__ = ["router"]

router = APIRouter(tags=["dashboard"], include_in_schema=False)

_STATIC = files("gcmc_jobs.http") / "static"
#: The vendored files served, with their media types.
_VENDOR = {
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
}


@router.get("/dashboard", response_class=HTMLResponse)
def page(request: Request) -> HTMLResponse:
    """The dashboard page, with the API's base path (the mount prefix) rendered in."""
    base = escape(request.scope.get("root_path", "").rstrip("/"), quote=True)
    html = (_STATIC / "dashboard.html").read_text(encoding="utf-8")
    return HTMLResponse(html.replace("{{BASE}}", base))


@router.get("/dashboard/app.js")
def script() -> Response:
    return Response(
        (_STATIC / "dashboard.js").read_text(encoding="utf-8"),
        media_type="text/javascript",
    )


@router.get("/dashboard/vendor/{name}")
def vendor(name: str) -> Response:
    """A vendored file (the charting library, its style sheet, its licence)."""
    media_type = _VENDOR.get(name)
    if media_type is None:
        raise HTTPException(404, "no such file")
    return Response(
        (_STATIC / "vendor" / name).read_text(encoding="utf-8"),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
