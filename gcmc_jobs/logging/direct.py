"""The hot path of the per-message events: :func:`direct_writer`, the configured processor
chain called without structlog's bound-logger machinery.

:class:`~gcmc_jobs.middleware.StructuredLogging` logs two events for every message a worker
runs (``started``, ``succeeded``). Through structlog each costs, besides the processors, the
library logger's lookup, structlog's lazy proxy, the filtering wrapper and the event dict's
assembly: about a third of the event. When the configuration in force is the one
:func:`~gcmc_jobs.logging.configure_logging` installed, :class:`DirectWriter` runs that
configuration's own processors and writer itself, so each line is exactly what structlog
would have written (same processors, same order, same writer), and an event below the
configured level is dropped before anything is built. For ``configure_logging``'s JSON
chain the processors are called in turn without the loop, ``add_log_level``'s assignment
inline, ``format_exc_info`` only when the event has an ``exc_info``, and ``redact_event``
and ``render_json`` fused into one pass over a flat event (:func:`_redacted_json`: the same
characters). For the events a caller writes again and again with the same keys
(:class:`~gcmc_jobs.middleware.StructuredLogging`'s ``started`` and ``succeeded``, per
actor and queue), :meth:`DirectWriter.template` renders that same pass once with the
varying values left out, and :meth:`LineTemplate.write` fills them in: the same line,
without the event dict or the per-key pass, the timestamp's second and microseconds
formatted by the line's own format (``UtcTimestamp.parts``), a duration given unrounded
and written as ``round(…, 3)`` writes it (:data:`MILLISECONDS`) and, on the worker's
buffered writer, the line appended to the buffer with its newline
(``BufferedLineLogger.appender``). Whenever a value is not a plain ``str``, ``int``,
finite ``float``, ``bool`` or ``None``, or a string the redaction rules may rewrite, or the
context holds bound fields other than the line's own, it writes nothing and the caller
takes the general path. When anyone reconfigures structlog afterwards (a test's
``capture_logs`` or ``capture_events``, a host application), the writer no longer matches
the configuration and :func:`direct_writer` answers ``None``: the caller goes through
structlog as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar, copy_context
from json.encoder import encode_basestring_ascii
from typing import Any

import structlog
from structlog.contextvars import STRUCTLOG_KEY_PREFIX

from gcmc_jobs.logging.buffered import BufferedLineLogger
from gcmc_jobs.logging.processors import UtcTimestamp, render_json
from gcmc_jobs.redaction import MASK, is_secret_key, redact_event, redact_text

__all__ = ["HOLE", "MILLISECONDS", "DirectWriter", "LineTemplate", "direct_writer", "install"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

#: Each key seen in a JSON line: its encoding with the separator (``"key": ``) and whether
#: it names a secret (:func:`gcmc_jobs.redaction.is_secret_key`). Keys are few; bounded.
_KEYS: dict[str, tuple[str, bool]] = {}
_MASKED = encode_basestring_ascii(MASK)
_INFINITIES = (float("-inf"), float("inf"))  # JSONEncoder writes them (and NaN) its own way


def _redacted_json(event_dict: Mapping[str, Any]) -> str | None:
    """``render_json(redact_event(event_dict))`` in one pass, for flat events: the same
    characters for about a third less CPU (no call per key, no encoder set up per line:
    ~5-6 µs instead of ~8 for a ``succeeded`` event, timeit, loaded machine). ``None``
    when a key is not a string or a value is neither ``str``, ``int``, finite ``float``,
    ``bool`` nor ``None`` (nested values, ``SecretStr``, …): the caller then runs the two
    processors themselves. ``event_dict`` is never modified."""
    parts: list[str] = []
    append = parts.append
    for key, value in event_dict.items():
        known = _KEYS.get(key) if key.__class__ is str else None
        if known is None:
            if key.__class__ is not str:
                return None
            known = (encode_basestring_ascii(key) + ": ", is_secret_key(key))
            if len(_KEYS) < 10_000:
                _KEYS[key] = known
        prefix, secret = known
        cls = value.__class__
        if value is None:
            append(prefix + "null")
        elif secret:
            append(prefix + _MASKED)
        elif cls is str:
            if "://" in value or "=" in value or " " in value:
                value = redact_text(value)
            append(prefix + encode_basestring_ascii(value))
        elif cls is int:
            append(prefix + int.__repr__(value))
        elif cls is float and value == value and value not in _INFINITIES:
            append(prefix + float.__repr__(value))
        elif cls is bool:
            append(prefix + ("true" if value else "false"))
        else:
            return None
    return "{" + ", ".join(parts) + "}"


class _Hole:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: A field value of :meth:`DirectWriter.template`: given with each line.
HOLE: Any = _Hole("HOLE")

#: A field value of :meth:`DirectWriter.template` (its first hole, if any): a duration in
#: milliseconds, given with each line as :meth:`LineTemplate.write`'s ``milliseconds``, any
#: float, and written as ``round(milliseconds, 3)`` would be (what the general path is given).
MILLISECONDS: Any = _Hole("MILLISECONDS")


class LineTemplate:
    """One event's JSON line rendered once with its constant fields, the values marked
    :data:`HOLE` (and the timestamp) left out; made by :meth:`DirectWriter.template`."""

    __slots__ = (
        "_emit",
        "_format",
        "_keys",
        "_milliseconds",
        "_quiet",
        "_stamp",
        "level",
        "writer",
    )

    def __init__(
        self,
        writer: DirectWriter,
        method: str,
        keys: Iterable[str],
        parts: Sequence[str],
        *,
        milliseconds: bool = False,
    ) -> None:
        self.writer = writer
        self._milliseconds = milliseconds  # the first hole is a MILLISECONDS one
        self.level = _LEVELS[method]
        # Keys the context may hold without changing the line: merge_contextvars never
        # overrides an event's own field.
        self._keys = frozenset(keys) | {"event"}
        # The context variables seen that merge_contextvars leaves out of this line or
        # merges under one of its keys (a variable's name never changes): each context
        # variable's name is looked at once. Bounded: variables are few.
        self._quiet: set[ContextVar[Any]] = set()
        # The text around each hole, then the timestamp's (JSON writes its characters
        # as they are: digits, "-", ":", "T", "." and "Z"), as one %-format.
        *around, before_stamp, end = (part.replace("%", "%%") for part in parts)
        sink = writer._sink
        if isinstance(sink, BufferedLineLogger) and method in BufferedLineLogger.BUFFERED:
            # The line with its newline, appended to the buffer as the sink's method would.
            end += "\n"
            self._emit = sink.appender()
        else:
            self._emit = getattr(sink, method)
        self._format = "%s".join([*around, before_stamp]) + '"%s%06dZ"' + end
        self._stamp = writer._chain[2].parts

    def write(self, values: Sequence[Any], milliseconds: float = 0.0) -> bool:
        """Write the line with ``values`` in the holes, in the order of the fields given to
        :meth:`DirectWriter.template` (one value per hole; a :data:`MILLISECONDS` hole's is
        ``milliseconds``): exactly what ``writer.write(method, event, fields)`` writes for
        those fields (the :data:`MILLISECONDS` one's ``round(milliseconds, 3)``). ``True``:
        written, or dropped below the configured level. ``False``: nothing written, the
        caller calls ``write()`` (a value that is not a plain ``str``, ``int``, finite
        ``float``, ``bool`` or ``None``, a string holding ``://``, ``=`` or a space, which
        the redaction rules may rewrite, ``milliseconds`` not a float from 0 to 10⁹, or
        fields bound in the context other than the line's own, which it would carry)."""
        writer = self.writer
        if self.level < writer.level:
            return True
        # What merge_contextvars (the chain's first processor) would add, without building
        # it: nothing, unless a variable of its prefix holds a value (not its Ellipsis) under
        # a key the line does not have.
        quiet = self._quiet
        for var, value in copy_context().items():
            if var not in quiet and value is not Ellipsis and not self._is_quiet(var):
                return False
        rendered: list[Any] = []  # the JSON text of each value (or the number itself)
        append = rendered.append
        if self._milliseconds:
            # repr(round(milliseconds, 3)) in half its CPU (round() formats the float, then
            # parses it back, then repr() formats it again): both are the decimal nearest to
            # it with 3 digits after the dot, correctly rounded, the trailing zeros dropped
            # but one. The same characters for a float from 0 to 10⁹ (no exponent; two
            # such decimals are never the same float).
            if milliseconds.__class__ is not float or not 0.0 <= milliseconds < 1e9:
                return False
            text = ("%.3f" % milliseconds).rstrip("0")  # noqa: UP031 (cheaper than f"")
            append(text + "0" if text[-1] == "." else text)
        for value in values:  # as _redacted_json renders each value
            cls = value.__class__
            if cls is str:
                if "://" in value or "=" in value or " " in value:
                    return False
                append(encode_basestring_ascii(value))
            elif cls is int or (cls is float and value == value and value not in _INFINITIES):
                append(value)  # "%s": int.__repr__ or float.__repr__ (the class is int/float)
            elif value is None:
                append("null")
            elif cls is bool:
                append("true" if value else "false")
            else:
                return False
        self._emit(self._format % (*rendered, *self._stamp()))
        return True

    def _is_quiet(self, var: ContextVar[Any]) -> bool:
        """Whether merge_contextvars leaves ``var`` out of the line or merges it under one of
        the line's own keys; remembered when it does."""
        name = var.name
        if name.startswith(STRUCTLOG_KEY_PREFIX) and (
            name[len(STRUCTLOG_KEY_PREFIX) :] not in self._keys
        ):
            return False
        if len(self._quiet) < 1_000:
            self._quiet.add(var)
        return True


class DirectWriter:
    """Writes an event through ``processors`` to ``sink`` (the logger ``logger_factory``
    made), as structlog's filtering bound logger of ``level`` would.

    Valid while structlog's configuration holds the same processors (compared by content:
    ``capture_logs`` swaps them inside the same list), wrapper class and logger factory.
    """

    __slots__ = ("_chain", "_factory", "_json", "_processors", "_sink", "_wrapper", "level")

    def __init__(
        self, *, level: int, processors: Sequence[Any], wrapper_class: Any, logger_factory: Any
    ) -> None:
        self.level = level
        self._processors = processors
        # A copy, as a list: compared with the configured list without copying that.
        self._chain = list(processors)
        self._wrapper = wrapper_class
        self._factory = logger_factory
        self._sink = logger_factory()
        # configure_logging's JSON chain exactly: written inline (see write()).
        chain = self._chain
        self._json = (
            len(chain) == 6
            and chain[0] is structlog.contextvars.merge_contextvars
            and chain[1] is structlog.processors.add_log_level
            and isinstance(chain[2], UtcTimestamp)
            and chain[3] is structlog.processors.format_exc_info
            and chain[4] is redact_event
            and chain[5] is render_json
        )

    def matches(self, config: Mapping[str, Any]) -> bool:
        """Whether structlog's configuration ``config`` is still the one this writer copies."""
        processors = config["processors"]
        return (
            config["wrapper_class"] is self._wrapper
            and config["logger_factory"] is self._factory
            and processors is self._processors
            and processors == self._chain
        )

    def template(self, method: str, event: str, fields: Mapping[str, Any]) -> LineTemplate | None:
        """The line of :meth:`write` for ``event`` at ``method`` with ``fields`` (in that
        order), pre-rendered: the values given as :data:`HOLE` (or :data:`MILLISECONDS`,
        as the first hole) are filled in by :meth:`LineTemplate.write` with each line.
        ``None`` when this writer's chain is not ``configure_logging``'s JSON chain, a
        constant value is not flat, a hole's key names a secret (masked whole: the general
        path writes it), or a :data:`MILLISECONDS` hole is not the first."""
        if not self._json or "exc_info" in fields:
            return None
        markers: list[str] = []
        event_dict: dict[str, Any] = {}
        milliseconds = False
        for key, value in fields.items():  # the event dict write() builds, in its order
            if value is MILLISECONDS:
                if markers:  # only as the first hole
                    return None
                milliseconds = True
            if value is HOLE or value is MILLISECONDS:
                value = f"\x00gcmc-hole-{len(markers)}\x00"
                markers.append(value)
            event_dict[key] = value
        event_dict["event"] = event
        event_dict["level"] = method
        event_dict["timestamp"] = stamp = f"\x00gcmc-hole-{len(markers)}\x00"
        markers.append(stamp)
        line = _redacted_json(event_dict)
        if line is None:
            return None
        parts: list[str] = []
        whole = line
        for marker in markers:
            quoted = encode_basestring_ascii(marker)
            if whole.count(quoted) != 1:  # masked (a secret key), overwritten (event, …)
                return None
            pieces = line.split(quoted)
            if len(pieces) != 2:  # out of order
                return None
            parts.append(pieces[0])
            line = pieces[1]
        parts.append(line)
        return LineTemplate(self, method, fields, parts, milliseconds=milliseconds)

    def write(self, method: str, event: str, fields: Mapping[str, Any]) -> None:
        """Log ``event`` with ``fields`` at ``method`` (``"debug"``, ``"info"``,
        ``"warning"``, ``"error"``): what ``structlog.get_logger().<method>(event, **fields)``
        does. Below the configured level it returns at once."""
        if _LEVELS[method] < self.level:
            return
        event_dict: Any = dict(fields)
        event_dict["event"] = event
        if self._json:
            # configure_logging's JSON chain, the same processors called in turn, but
            # add_log_level's one assignment inline (method is debug, info, warning or
            # error: its own name), format_exc_info only when there is an exc_info to
            # format, and redaction and rendering in one pass for a flat event.
            chain, sink = self._chain, self._sink
            event_dict = chain[0](sink, method, event_dict)
            event_dict["level"] = method
            event_dict = chain[2](sink, method, event_dict)
            if "exc_info" in event_dict:
                event_dict = chain[3](sink, method, event_dict)
            line = _redacted_json(event_dict)
            if line is None:
                line = chain[5](sink, method, chain[4](sink, method, event_dict))
            getattr(sink, method)(line)
            return
        try:
            for processor in self._chain:
                event_dict = processor(self._sink, method, event_dict)
        except structlog.DropEvent:
            return
        getattr(self._sink, method)(event_dict)


_installed: DirectWriter | None = None


def install(writer: DirectWriter | None) -> None:
    """Make ``writer`` the direct path (``None``: none). Called by ``configure_logging``."""
    global _installed
    _installed = writer


#: The object structlog keeps its configuration in (``get_config()`` copies it into a new
#: dict on every call: a tenth of a ``succeeded`` line's cost). Private: if a structlog
#: release no longer has it, :func:`direct_writer` reads ``get_config()``.
_CONFIG: Any = getattr(getattr(structlog, "_config", None), "_CONFIG", None)
if not all(
    hasattr(_CONFIG, name)
    for name in ("default_processors", "default_wrapper_class", "logger_factory")
):
    _CONFIG = None


def direct_writer() -> DirectWriter | None:
    """The installed writer while structlog's configuration is still the one it copies,
    else ``None`` (log through structlog)."""
    writer = _installed
    if writer is None:
        return None
    config = _CONFIG
    if config is None:
        return writer if writer.matches(structlog.get_config()) else None
    processors = config.default_processors  # DirectWriter.matches(), without the dict
    if (
        config.default_wrapper_class is writer._wrapper
        and config.logger_factory is writer._factory
        and processors is writer._processors
        and processors == writer._chain
    ):
        return writer
    return None
