"""Campaign email: an operator's subject and body templates, checked when the campaign is
created and rendered per recipient, and its MIME message with the one-click unsubscribe
headers.

The templates are Jinja2 in the package's sandboxed environment
(:func:`gcmc_jobs.email.rendering.environment`: no access to Python internals, an undefined
variable is an error). They see only the safe fields of :data:`CAMPAIGN_FIELDS`, never a
database row; every value is data (``{{ 7 * 7 }}`` in a client's name renders as typed).
The body is plain text: the HTML part shows it escaped, in the packaged layout
(``campaign.html``, ``campaign.txt``), with the unsubscribe link in the footer.
"""

from __future__ import annotations

from email.message import EmailMessage
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta

from gcmc_jobs.email.mime import build_mime
from gcmc_jobs.email.rendering import RenderedEmail, environment
from gcmc_jobs.email.unsubscribe import list_unsubscribe_headers
from gcmc_jobs.errors import InvalidPayload, TemplateRenderError

__all__ = [
    "CAMPAIGN_FIELDS",
    "KIND",
    "build_campaign_mime",
    "check_templates",
    "render_campaign",
]

#: The ``kind`` of campaign email (``email_log.kind``, ``X-GCMC-Kind``).
KIND = "campaign"

#: The fields a campaign's templates may use, with what each holds.
CAMPAIGN_FIELDS: dict[str, str] = {
    "recipient_name": "the recipient's name (a client's or a staff member's), or their address",
    "recipient_email": "the address mailed (lowercased)",
    "tenant_name": "the tenant's name",
    "campaign_name": "the campaign's name",
    "portal_url": "GCMC_JOBS_PORTAL_URL",
    "support_email": "GCMC_JOBS_SUPPORT_EMAIL",
    "unsubscribe_url": "this recipient's one-click unsubscribe link",
}

_SAMPLE = {
    "recipient_name": "Jane Doe",
    "recipient_email": "jane@example.com",
    "tenant_name": "Acme CPA",
    "campaign_name": "Newsletter",
    "portal_url": "https://portal.example",
    "support_email": "help@example.com",
    "unsubscribe_url": "https://jobs.example/unsubscribe/TOKEN",
}
_MAX_SUBJECT = 500
_MAX_BODY = 100_000


@lru_cache(maxsize=64)
def _compile(source: str, templates_dir: str | None) -> jinja2.Template:
    return environment(templates_dir).from_string(source)


def check_templates(subject: str, body: str, *, templates_dir: str | None = None) -> None:
    """Refuse templates that could not render for every recipient: a syntax error, a field
    not in :data:`CAMPAIGN_FIELDS`, an empty subject, or one too long. Raises
    :class:`~gcmc_jobs.errors.InvalidPayload` naming the template and the problem."""
    if "\x00" in subject or "\x00" in body:
        raise InvalidPayload("the templates must not contain NUL characters")
    if not subject.strip():
        raise InvalidPayload("subject: the subject template is empty")
    if len(subject) > _MAX_SUBJECT or len(body) > _MAX_BODY:
        raise InvalidPayload(
            f"the subject template takes at most {_MAX_SUBJECT} characters and the body {_MAX_BODY}"
        )
    if not body.strip():
        raise InvalidPayload("body: the body template is empty")
    env = environment(templates_dir)
    for name, source in (("subject", subject), ("body", body)):
        try:
            unknown = sorted(meta.find_undeclared_variables(env.parse(source)) - set(_SAMPLE))
            if unknown:
                raise TemplateRenderError(f"unknown field(s) {', '.join(map(repr, unknown))}")
            _render(source, dict(_SAMPLE), templates_dir)
        except jinja2.TemplateSyntaxError as exc:
            raise InvalidPayload(f"{name}: line {exc.lineno}: {exc.message}") from None
        except TemplateRenderError as exc:
            raise InvalidPayload(f"{name}: {exc} (fields: {', '.join(CAMPAIGN_FIELDS)})") from None


def _render(source: str, context: dict[str, Any], templates_dir: str | None) -> str:
    try:
        return _compile(source, templates_dir).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateRenderError(f"line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateRenderError(str(exc)) from None


def render_campaign(
    subject: str,
    body: str,
    context: dict[str, Any],
    *,
    templates_dir: str | None = None,
) -> RenderedEmail:
    """Render a campaign's templates for one recipient (``context``: every field of
    :data:`CAMPAIGN_FIELDS`). The subject's whitespace is collapsed to one line."""
    rendered_subject = " ".join(_render(subject, context, templates_dir).split())
    if not rendered_subject:
        raise TemplateRenderError("the campaign's subject rendered empty")
    text = _render(body, context, templates_dir)
    env = environment(templates_dir)
    parts = {**context, "subject": rendered_subject, "body": text}
    return RenderedEmail(
        kind=KIND,
        subject=rendered_subject,
        html=env.get_template("campaign.html").render(parts),
        text=env.get_template("campaign.txt").render(parts),
    )


def build_campaign_mime(
    rendered: RenderedEmail,
    *,
    to: str,
    sender: str,
    dedup_key: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str | None = None,
) -> EmailMessage:
    """The MIME message of one campaign email: :func:`~gcmc_jobs.email.mime.build_mime`
    plus ``List-Unsubscribe`` (the one-click URL, and ``mailto:`` when configured),
    ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058) and
    ``Precedence: bulk``."""
    message = build_mime(rendered, to=to, sender=sender, dedup_key=dedup_key)
    for name, value in list_unsubscribe_headers(unsubscribe_url, unsubscribe_mailto).items():
        message[name] = value
    message["Precedence"] = "bulk"
    return message
