"""The per-message events' direct path (gcmc_jobs.logging.direct): the same line structlog
writes, dropped below the level, and given up as soon as structlog is reconfigured."""

from __future__ import annotations

import contextvars
import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from structlog.testing import capture_logs

from gcmc_jobs.logging import configure_logging, direct
from gcmc_jobs.logging.direct import HOLE, MILLISECONDS, direct_writer
from gcmc_jobs.settings import Settings


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """configure_logging (JSON, INFO) writing to a string; structlog restored afterwards."""
    stream = io.StringIO()
    previous = structlog.get_config()
    configure_logging(Settings(log_format="json", log_level="INFO"), stream=stream, cache=False)
    try:
        yield stream
    finally:
        structlog.configure(**previous)
        structlog.contextvars.clear_contextvars()


def _items_but_timestamp(line: str) -> list[tuple[str, Any]]:
    # In key order: the direct path must write the same keys in the same order.
    return [(k, "(time)" if k == "timestamp" else v) for k, v in json.loads(line).items()]


def test_the_direct_path_writes_the_line_structlog_writes(configured: io.StringIO) -> None:
    # Given a bound context and fields that the redaction rules rewrite
    structlog.contextvars.bind_contextvars(correlation_id="req-1", message_id="bound")
    fields = {
        "message_id": "m-1",
        "attempt": 2,
        "url": "smtp://user:hunter2@mail.example",
        "password": "hunter2",
        "tenant_id": None,
    }
    # When the same event goes through structlog and through the direct path
    structlog.get_logger("t").info("started", **fields)
    writer = direct_writer()
    assert writer is not None
    writer.write("info", "started", fields)
    # Then both lines are the same, key for key and in the same order
    through_structlog, direct = configured.getvalue().splitlines()
    assert _items_but_timestamp(direct) == _items_but_timestamp(through_structlog)
    record = json.loads(direct)
    assert record["message_id"] == "m-1"  # the event's field wins over the bound one
    assert record["correlation_id"] == "req-1"
    assert record["password"] == "***"
    assert record["url"] == "smtp://***@mail.example"
    assert "hunter2" not in direct


@pytest.mark.parametrize("method", ["info", "warning", "error"])
def test_an_event_with_an_exception_is_written_as_structlog_writes_it(
    configured: io.StringIO, method: str
) -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        error = exc
    getattr(structlog.get_logger("t"), method)("failed", exc_info=error, attempt=3)
    writer = direct_writer()
    assert writer is not None
    writer.write(method, "failed", {"exc_info": error, "attempt": 3})
    through_structlog, direct = configured.getvalue().splitlines()
    assert _items_but_timestamp(direct) == _items_but_timestamp(through_structlog)
    record = json.loads(direct)
    assert record["level"] == method
    assert "ValueError: boom" in record["exception"]


def test_the_direct_path_drops_an_event_below_the_configured_level() -> None:
    stream = io.StringIO()
    previous = structlog.get_config()
    try:
        configure_logging(
            Settings(log_format="json", log_level="WARNING"), stream=stream, cache=False
        )
        writer = direct_writer()
        assert writer is not None
        writer.write("info", "started", {"message_id": "m-1"})
        writer.write("warning", "retried", {"message_id": "m-1"})
    finally:
        structlog.configure(**previous)
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["event"] == "retried"


@pytest.mark.parametrize("read", ["structlog's object", "get_config()"])
def test_there_is_no_direct_path_while_structlog_is_configured_otherwise(
    configured: io.StringIO, read: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if read == "get_config()":  # a structlog release without the private object
        monkeypatch.setattr(direct, "_CONFIG", None)
    assert direct_writer() is not None
    # capture_logs swaps the processors inside the configured list
    with capture_logs():
        assert direct_writer() is None
    assert direct_writer() is not None
    # a host (or a test helper) configuring structlog anew
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    assert direct_writer() is None


def _without_timestamp(line: str) -> str:
    return re.sub(r'"timestamp": "[0-9T:.-]+Z"', '"timestamp": "(time)"', line)


def test_a_flat_event_is_written_byte_for_byte_as_structlog_writes_it_redacted(
    configured: io.StringIO,
) -> None:
    # Given fields of every flat type, secret-named keys, and strings the rules rewrite
    structlog.contextvars.bind_contextvars(correlation_id="req-1")
    fields = {
        "duration_ms": 0.25,
        "message_id": "m-é\n",
        "attempt": 2,
        "ok": True,
        "url": "smtp://user:hunter2@mail.example/?token=abc",
        "api_key": "hunter2",
        "password": None,
        "tenant_id": None,
    }
    # When it is written through the direct path and through structlog
    writer = direct_writer()
    assert writer is not None
    writer.write("info", "succeeded", fields)
    structlog.get_logger("t").info("succeeded", **fields)
    direct, through_structlog = configured.getvalue().splitlines()
    # Then the two lines are the same characters (but the time), and the expected JSON
    assert _without_timestamp(direct) == _without_timestamp(through_structlog)
    assert _without_timestamp(direct) == (
        '{"duration_ms": 0.25, "message_id": "m-\\u00e9\\n", "attempt": 2, "ok": true, '
        '"url": "smtp://***@mail.example/?token=***", "api_key": "***", "password": null, '
        '"tenant_id": null, "event": "succeeded", "correlation_id": "req-1", '
        '"level": "info", "timestamp": "(time)"}'
    )


@pytest.mark.parametrize(
    "value",
    [{"nested": {"token": "abc"}}, [1, "x y"], float("nan"), SecretStr("abc"), ("a", 1)],
    ids=["dict", "list", "nan", "secretstr", "tuple"],
)
def test_an_event_with_other_values_is_written_as_structlog_writes_it(
    configured: io.StringIO, value: Any
) -> None:
    writer = direct_writer()
    assert writer is not None
    writer.write("warning", "retried", {"value": value, "attempt": 1})
    structlog.get_logger("t").warning("retried", value=value, attempt=1)
    direct, through_structlog = configured.getvalue().splitlines()
    assert _without_timestamp(direct) == _without_timestamp(through_structlog)
    assert "abc" not in direct


# -- templates: the constant part of a line rendered once ------------------------------

_TEXT = st.text(alphabet=st.sampled_from('ab-_:/= é"\\%\n\x00'), max_size=12)
_FLAT = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 1e-7, 0.125]),
    _TEXT,
    st.lists(st.integers(), max_size=2),
    st.builds(SecretStr, _TEXT),
)
_KEYS = st.sampled_from(
    ["message_id", "actor", "queue", "attempt", "correlation_id", "tenant_id", "token",
     "duration_ms", "event", "level", "url"]
)  # fmt: skip


@given(
    fields=st.dictionaries(_KEYS, st.tuples(_FLAT, st.booleans()), max_size=7),
    method=st.sampled_from(["debug", "info", "warning"]),
    bound=st.dictionaries(st.one_of(_KEYS, st.just("timestamp")), _FLAT, max_size=3),
)
@settings(max_examples=300, deadline=None)
def test_a_template_writes_the_line_the_general_path_writes_or_nothing(
    fields: dict[str, tuple[Any, bool]], method: str, bound: dict[str, Any]
) -> None:
    # Given an event's fields, some of them holes (given with each line), others constant,
    # and fields bound in the context (the line's own, or others)
    stream = io.StringIO()
    previous = structlog.get_config()
    configure_logging(Settings(log_format="json", log_level="DEBUG"), stream=stream, cache=False)
    try:
        structlog.contextvars.bind_contextvars(**bound)
        writer = direct_writer()
        assert writer is not None
        shape = {key: HOLE if hole else value for key, (value, hole) in fields.items()}
        template = writer.template(method, "succeeded", shape)
        values = [value for value, hole in fields.values() if hole]
        # When the template writes them, and the general path writes the same fields
        written = template is not None and template.write(values)
        direct_lines = stream.getvalue().splitlines()
        writer.write(method, "succeeded", {key: value for key, (value, _) in fields.items()})
    finally:
        structlog.configure(**previous)
        structlog.contextvars.clear_contextvars()
    general = stream.getvalue().splitlines()[len(direct_lines) :]
    event(f"written={written}")
    # Then the template wrote the same characters (but the time), or nothing at all
    if written:
        assert [_without_timestamp(line) for line in direct_lines] == [
            _without_timestamp(line) for line in general
        ]
    else:
        assert direct_lines == []


def test_a_template_falls_back_on_values_the_redaction_rules_may_rewrite(
    configured: io.StringIO,
) -> None:
    writer = direct_writer()
    assert writer is not None
    template = writer.template(
        "info", "succeeded", {"message_id": HOLE, "actor": "smtp://u:pw@h", "attempt": HOLE}
    )
    assert template is not None
    for value in ["a b", "x=1", "smtp://u:pw@h", SecretStr("pw"), {"token": "pw"}]:
        assert not template.write(["m-1", value])
    assert configured.getvalue() == ""
    assert template.write(["m-1", 2])
    assert _without_timestamp(configured.getvalue()) == (
        '{"message_id": "m-1", "actor": "smtp://***@h", "attempt": 2, "event": "succeeded", '
        '"level": "info", "timestamp": "(time)"}\n'
    )
    # a hole under a secret key: masked whole by the general path only
    assert writer.template("info", "succeeded", {"token": HOLE}) is None


def test_a_template_checks_the_context_again_at_each_line(configured: io.StringIO) -> None:
    # Given a template, and context variables it has seen: one of its own keys, one of
    # another library, a field bound and then cleared (structlog keeps it, as Ellipsis)
    writer = direct_writer()
    assert writer is not None
    template = writer.template("info", "succeeded", {"message_id": HOLE, "attempt": HOLE})
    assert template is not None
    other = contextvars.ContextVar("other_library")
    other.set("x y")
    structlog.contextvars.bind_contextvars(message_id="bound", request_id="r-1")
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(message_id="bound")
    assert template.write(["m-1", 1])
    # When a field that is not the line's own is bound again (twice), then cleared
    written_while_bound = []
    for request_id in ["r-2", "r-3"]:
        structlog.contextvars.bind_contextvars(request_id=request_id)
        written_while_bound.append(template.write(["m-2", 1]))
    structlog.contextvars.clear_contextvars()
    assert template.write(["m-3", 1])
    # Then the lines that would carry it are left to the general path, the others written
    assert written_while_bound == [False, False]
    assert [json.loads(line)["message_id"] for line in configured.getvalue().splitlines()] == [
        "m-1",
        "m-3",
    ]


#: Clock readings (ns since the epoch) around a second's edges: its first and last
#: microsecond, the next second, and an earlier one (the cached second must be replaced).
_SECOND_EDGES = st.integers(1_700_000_000, 1_700_000_003).flatmap(
    lambda s: st.sampled_from([s * 10**9, s * 10**9 + 999, s * 10**9 + 999_999_999, s * 10**9 - 1])
)


@given(
    lines=st.lists(
        st.tuples(
            st.one_of(
                st.floats(0, 1e9),
                st.sampled_from([0.0, -0.0, 0.0005, 0.0625, 0.9995, 1.0, 999.9995, 1e9 - 1e-3]),
                st.floats(allow_nan=True, allow_infinity=True),  # given to the general path
            ),
            st.one_of(_SECOND_EDGES, st.integers(1_600_000_000 * 10**9, 1_900_000_000 * 10**9)),
        ),
        min_size=1,
        max_size=6,
    )
)
@settings(max_examples=300, deadline=None)
def test_a_template_writes_a_duration_and_the_time_as_the_general_path_writes_them(
    lines: list[tuple[float, int]],
) -> None:
    # Given a template whose first hole is a duration in milliseconds, and clock readings
    # in any order (the same second again, the next one, an earlier one)
    stream = io.StringIO()
    previous = structlog.get_config()
    configure_logging(Settings(log_format="json", log_level="INFO"), stream=stream, cache=False)
    try:
        writer = direct_writer()
        assert writer is not None
        template = writer.template(
            "info", "succeeded", {"duration_ms": MILLISECONDS, "message_id": HOLE, "actor": "a"}
        )
        assert template is not None
        with pytest.MonkeyPatch.context() as patch:
            for milliseconds, ns in lines:
                patch.setattr(time, "time_ns", lambda ns=ns: ns)
                # When the template writes a line, and the general path the same fields
                # with the duration rounded to 3 digits, at the same time
                written = template.write(["m-1"], milliseconds)
                direct_line = stream.getvalue()
                stream.seek(0)
                stream.truncate()
                fields = {"duration_ms": round(milliseconds, 3), "message_id": "m-1", "actor": "a"}
                writer.write("info", "succeeded", fields)
                general = stream.getvalue()
                stream.seek(0)
                stream.truncate()
                # Then both are the same characters, or the template wrote nothing (a
                # duration outside 0 to 10⁹, for the general path)
                event(f"written={written}")
                assert direct_line == (general if written else "")
                assert written == (0 <= milliseconds < 1e9)
    finally:
        structlog.configure(**previous)


def test_a_template_s_lines_through_the_worker_s_buffer_are_the_general_path_s() -> None:
    # Given the worker's logging (lines buffered, a warning written at once) and templates
    # at a buffered level and at one written at once
    stream = io.StringIO()
    previous = structlog.get_config()
    configure_logging(
        Settings(log_format="json", log_level="INFO"), stream=stream, cache=False, buffer_ms=60_000
    )
    direct_lines, general = [], []
    try:
        writer = direct_writer()
        assert writer is not None
        sink = writer._sink
        with pytest.MonkeyPatch.context() as patch:
            for method in ["info", "warning"]:
                template = writer.template(
                    method, "succeeded", {"duration_ms": MILLISECONDS, "message_id": HOLE}
                )
                assert template is not None
                for ns in [1_700_000_000_999_999_000, 1_700_000_001_000_000_000]:  # a new second
                    patch.setattr(time, "time_ns", lambda ns=ns: ns)
                    # When the template writes them, and the general path the same fields
                    assert template.write(["m-1"], 12.3456)
                    sink.flush()
                    direct_lines.append(stream.getvalue())
                    stream.seek(0)
                    stream.truncate()
                    writer.write(method, "succeeded", {"duration_ms": 12.346, "message_id": "m-1"})
                    sink.flush()
                    general.append(stream.getvalue())
                    stream.seek(0)
                    stream.truncate()
    finally:
        structlog.configure(**previous)
    # Then each line is the same characters, newline included
    assert direct_lines == general
    assert direct_lines[1] == (
        '{"duration_ms": 12.346, "message_id": "m-1", "event": "succeeded", "level": "info", '
        '"timestamp": "2023-11-14T22:13:21.000000Z"}\n'
    )


def test_a_milliseconds_hole_is_the_first_hole_or_there_is_no_template(
    configured: io.StringIO,
) -> None:
    writer = direct_writer()
    assert writer is not None
    fields = {"message_id": HOLE, "duration_ms": MILLISECONDS}
    assert writer.template("info", "succeeded", fields) is None
    assert writer.template("info", "succeeded", {"d": MILLISECONDS, "e": MILLISECONDS}) is None
    assert writer.template("info", "succeeded", {"d": MILLISECONDS, "m": HOLE}) is not None
