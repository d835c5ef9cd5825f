"""The registry of email kinds: each kind's payload model, templates and delivery path.

Derived from the payload classes (:data:`gcmc_jobs.email.kinds.PAYLOADS`): each class states
its kind's name (``kind``) and whether it is security mail (``critical``); nothing here
repeats them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from gcmc_jobs.email import kinds as _kinds
from gcmc_jobs.errors import InvalidPayload

__all__ = ["KINDS", "EmailKind", "get_kind", "validate_payload"]


@dataclass(frozen=True)
class EmailKind:
    """One email kind: its payload class, and what the class states.

    ``critical`` kinds (security mail) travel on ``queue_names.EMAIL_CRITICAL`` and are rate
    limited in the ``"security"`` class; the others on ``queue_names.EMAIL``, class
    ``"default"``.
    """

    model: type[_kinds.EmailPayload]

    @property
    def name(self) -> str:
        """The kind's name: ``model.kind``."""
        return self.model.kind

    @property
    def critical(self) -> bool:
        """Security mail: ``model.critical``."""
        return self.model.critical

    @property
    def subject_template(self) -> str:
        """Template of the subject line: ``<kind>.subject.txt``."""
        return f"{self.name}.subject.txt"

    @property
    def html_template(self) -> str:
        """Template of the HTML part: ``<kind>.html`` (autoescaped)."""
        return f"{self.name}.html"

    @property
    def text_template(self) -> str:
        """Template of the plain-text part: ``<kind>.txt``."""
        return f"{self.name}.txt"

    @property
    def rate_limit_class(self) -> str:
        """``"security"`` for critical kinds, else ``"default"``."""
        return "security" if self.critical else "default"


#: Every kind by name, from :data:`~gcmc_jobs.email.kinds.PAYLOADS`.
KINDS: Mapping[str, EmailKind] = MappingProxyType(
    {model.kind: EmailKind(model) for model in _kinds.PAYLOADS}
)


def get_kind(name: str) -> EmailKind:
    """The kind called ``name``; :class:`InvalidPayload` names the known ones otherwise."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise InvalidPayload(
            f"unknown email kind {name!r}; known kinds: {', '.join(KINDS)}"
        ) from None


def validate_payload(
    kind: str, data: _kinds.EmailPayload | Mapping[str, Any]
) -> _kinds.EmailPayload:
    """Validate ``data`` (a model of the kind, or a mapping) as the payload of ``kind``.

    Raises :class:`InvalidPayload` with pydantic's field-by-field explanation; a secret's
    value never appears in the message (pydantic's errors do not echo ``SecretStr`` inputs
    of the fields we check after parsing, and we drop ``input`` values from the text).
    """
    entry = get_kind(kind)
    if isinstance(data, _kinds.EmailPayload):
        if not isinstance(data, entry.model):
            raise InvalidPayload(
                f"a {type(data).__name__} is not a payload of email kind {kind!r} "
                f"(expected {entry.model.__name__})"
            )
        return data
    if not isinstance(data, Mapping):
        raise InvalidPayload(
            f"the payload of email kind {kind!r} must be a {entry.model.__name__} or a mapping, "
            f"got {type(data).__name__}"
        )
    try:
        return entry.model.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(payload)'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise InvalidPayload(f"invalid {kind!r} email payload: {problems}") from None
