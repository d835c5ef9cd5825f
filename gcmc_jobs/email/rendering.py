"""Rendering an email kind's templates (subject, HTML, text) in a sandboxed Jinja2 environment.

Templates live in ``gcmc_jobs/templates/email/``: ``layout.html`` and ``layout.txt`` (the
shared layout, with the tenant's name), and per kind ``<kind>.subject.txt``, ``<kind>.html``
and ``<kind>.txt``. A host application overrides any of them file by file by pointing
``settings.email_templates_dir`` at a directory holding files of the same names: that
directory comes first in a ``ChoiceLoader``.

The environment is a :class:`~jinja2.sandbox.SandboxedEnvironment` (a template, even one a
host wrote, cannot reach Python internals), ``.html`` templates are autoescaped, and an
undefined variable is an error (``StrictUndefined``), never an empty string. Payload values
are data: a name containing ``{{ 7 * 7 }}`` or ``<script>`` is shown as typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from gcmc_jobs.email.kinds import EmailPayload
from gcmc_jobs.email.registry import get_kind
from gcmc_jobs.errors import TemplateRenderError, UnknownTemplate

__all__ = ["RenderedEmail", "environment", "render"]


@dataclass(frozen=True)
class RenderedEmail:
    """The three rendered parts of one email."""

    kind: str
    subject: str
    html: str
    text: str


def _long_date(value: date) -> str:
    return f"{value.day} {value.strftime('%B %Y')}"


def _money(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,.2f}"


@lru_cache(maxsize=8)
def environment(templates_dir: str | None = None) -> SandboxedEnvironment:
    """The (cached) sandboxed environment; ``templates_dir`` overrides packaged templates."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir:
        loaders.append(jinja2.FileSystemLoader(templates_dir))
    loaders.append(jinja2.PackageLoader("gcmc_jobs", "templates/email"))
    env = SandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["long_date"] = _long_date
    env.filters["money"] = _money
    return env


def _render(env: SandboxedEnvironment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound:
        raise UnknownTemplate(f"no email template {name!r}") from None
    except jinja2.TemplateError as exc:
        # Jinja's messages name variables and templates, never the values rendered.
        raise TemplateRenderError(f"email template {name!r} failed: {exc}") from None


def render(kind: str, payload: EmailPayload, *, templates_dir: str | None = None) -> RenderedEmail:
    """Render ``kind``'s subject, HTML and text parts for a validated ``payload``.

    The subject's whitespace (newlines included) is collapsed to single spaces, so no
    template can break a header either. Raises :class:`UnknownTemplate` or
    :class:`TemplateRenderError` (both permanent).
    """
    entry = get_kind(kind)
    env = environment(templates_dir)
    context = payload.template_context()
    subject = " ".join(_render(env, entry.subject_template, context).split())
    if not subject:
        raise TemplateRenderError(f"email template {entry.subject_template!r} rendered empty")
    context["subject"] = subject
    return RenderedEmail(
        kind=kind,
        subject=subject,
        html=_render(env, entry.html_template, context),
        text=_render(env, entry.text_template, context),
    )
