"""StructuredLogging: one event per state, with context; secrets never reach an event."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from typing import Any

import dramatiq
import pytest
import structlog
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr

from gcmc_jobs.logging import BufferedLineLogger, configure_logging, redact_event
from gcmc_jobs.logging.direct import direct_writer
from gcmc_jobs.middleware import StructuredLogging
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import capture_events

REQUIRED = {"message_id", "actor", "queue", "attempt", "correlation_id"}


def test_a_retried_then_succeeded_message_logs_its_states_with_its_correlation_id(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker
) -> None:
    calls: list[int] = []

    @dramatiq.actor(broker=gcmc_broker, max_retries=3, min_backoff=1, max_backoff=2)
    def flaky(tenant_id: int) -> None:
        calls.append(tenant_id)
        structlog.get_logger("host").info("inside_actor")
        if len(calls) < 3:
            raise ConnectionError("try later")

    with capture_events() as events:
        structlog.contextvars.bind_contextvars(correlation_id="req-42")
        try:
            message = flaky.send(tenant_id=9)
        finally:
            structlog.contextvars.unbind_contextvars("correlation_id")
        gcmc_broker.join(flaky.queue_name)
        worker.join()

    mine = [e for e in events if e.get("message_id") == message.message_id]
    states = [e["event"] for e in mine if e["event"] != "inside_actor"]
    assert states == [
        "enqueued",
        "started", "retried",
        "started", "retried",
        "started", "succeeded",
    ]  # fmt: skip
    assert all(e.keys() >= REQUIRED for e in mine)
    assert {e["correlation_id"] for e in mine} == {"req-42"}
    assert {e["tenant_id"] for e in mine} == {9}
    retried = [e for e in mine if e["event"] == "retried"]
    assert [e["attempt"] for e in retried] == [1, 2]
    assert all(e["delay_ms"] >= 1 and e["error"] == "ConnectionError: try later" for e in retried)
    assert [e["attempt"] for e in mine if e["event"] == "started"] == [1, 2, 3]
    (succeeded,) = [e for e in mine if e["event"] == "succeeded"]
    assert succeeded["duration_ms"] >= 0
    # The actor's own events carry the message's context too
    inside = [e for e in mine if e["event"] == "inside_actor"]
    assert len(inside) == 3
    assert {e["correlation_id"] for e in inside} == {"req-42"}


def test_a_message_without_a_correlation_id_gets_one_and_its_children_inherit_it(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker
) -> None:
    @dramatiq.actor(broker=gcmc_broker)
    def child() -> None: ...

    @dramatiq.actor(broker=gcmc_broker)
    def parent() -> None:
        child.send()

    with capture_events() as events:
        message = parent.send()
        gcmc_broker.join(parent.queue_name)
        worker.join()
    correlation = message.options["correlation_id"]
    assert correlation
    child_events = [e for e in events if e.get("actor") == "child"]
    assert child_events
    assert {e["correlation_id"] for e in child_events} == {correlation}


def test_no_event_of_a_password_reset_contains_its_token(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker
) -> None:
    token = "tok_9f8e7d6c5b4a3210"

    @dramatiq.actor(broker=gcmc_broker, max_retries=1, min_backoff=1, max_backoff=1)
    def password_reset(to: str, reset_link: str, token: str) -> None:
        log = structlog.get_logger("host.email")
        log.info("sending", to=to, reset_link=reset_link, token=token)
        log.info(f"built link {reset_link}", smtp="smtp://mailer:pw-{token}@smtp.example")
        log.info("secret", value=SecretStr(token), payload={"nested": {"api_key": token}})
        raise RuntimeError(f"server refused {reset_link}")

    with capture_events() as events:
        password_reset.send(
            to="a@example.com",
            reset_link=f"https://portal.example/reset/{token}?token={token}",
            token=token,
        )
        gcmc_broker.join(password_reset.queue_name, fail_fast=False)
        worker.join()

    assert {"sending", "retried", "failed", "dead_lettered"} <= {e["event"] for e in events}
    for event in events:
        assert token not in repr(event), event


def test_the_redaction_processor_masks_keys_urls_and_secret_strings() -> None:
    event: dict[str, Any] = {
        "event": "x",
        "password": "hunter2",
        "smtp_url": "smtp://user:hunter2@mail.example:587",
        "link": "https://portal.example/reset/abc123def?x=1",
        "query": "https://p.example/verify?token=abc123def&lang=en",
        "headers": {"Authorization": "Bearer abc123def"},
        "api": SecretStr("abc123def"),
        "list": ["Bearer abc123def"],
        "count": 3,
    }
    out = redact_event(None, "info", event)
    assert "hunter2" not in repr(out)
    assert "abc123def" not in repr(out)
    assert out["smtp_url"] == "smtp://***@mail.example:587"
    assert out["query"] == "https://p.example/verify?token=***&lang=en"
    assert out["count"] == 3


def test_configure_logging_writes_json_lines_at_the_configured_level() -> None:
    stream = io.StringIO()
    previous = structlog.get_config()
    try:
        configure_logging(
            Settings(log_format="json", log_level="WARNING"), stream=stream, cache=False
        )
        log = structlog.get_logger("t")
        log.info("hidden")
        log.warning("shown", password="hunter2")
    finally:
        structlog.configure(**previous)
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "shown"
    assert record["level"] == "warning"
    assert record["password"] == "***"
    assert "timestamp" in record


def test_the_worker_logger_batches_info_lines_and_writes_warnings_at_once() -> None:
    stream = io.StringIO()
    logger = BufferedLineLogger(stream, buffer_ms=60_000)
    logger.info("one")
    logger.info("two")
    assert stream.getvalue() == ""
    logger.warning("three")
    assert stream.getvalue() == "one\ntwo\nthree\n"
    logger.info("four")
    logger.flush()
    assert stream.getvalue().endswith("three\nfour\n")


def test_json_lines_carry_an_iso_utc_timestamp_and_render_any_value() -> None:
    stream = io.StringIO()
    previous = structlog.get_config()
    try:
        configure_logging(Settings(log_format="json", log_level="INFO"), stream=stream, cache=False)
        before = datetime.now(UTC)
        structlog.get_logger("t").info("shown", when=before, url="smtp://u:hunter2@h")
        after = datetime.now(UTC)
    finally:
        structlog.configure(**previous)
    record = json.loads(stream.getvalue())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record["timestamp"])
    assert before <= datetime.fromisoformat(record["timestamp"]) <= after
    assert record["when"] == str(before)  # values JSON cannot hold are written with str()
    assert record["url"] == "smtp://***@h"


def _run_configured(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker, level: str
) -> tuple[str, list[dict[str, Any]]]:
    """Run one message on a worker configured by configure_logging (JSON at ``level``: the
    per-message events take the direct path of gcmc_jobs.logging.direct); the message id
    and the lines written."""

    @dramatiq.actor(broker=gcmc_broker, actor_name=f"quiet_{level.lower()}")
    def quiet(tenant_id: int) -> None:
        structlog.get_logger("host").info("inside_actor", token="s3cret")

    stream = io.StringIO()
    previous = structlog.get_config()
    try:
        configure_logging(Settings(log_format="json", log_level=level), stream=stream, cache=False)
        assert direct_writer() is not None
        message = quiet.send_with_options(kwargs={"tenant_id": 7}, correlation_id="req-9")
        gcmc_broker.join(quiet.queue_name)
        worker.join()
    finally:
        structlog.configure(**previous)
    return message.message_id, [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_worker_at_info_writes_one_succeeded_line_a_message_and_no_started_line(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker
) -> None:
    # Given the worker's logging configuration at INFO, when a message runs
    message_id, lines = _run_configured(gcmc_broker, worker, "INFO")
    # Then each state is one JSON line with the message's context, in order; ``started``
    # is a DEBUG event, so the attempt is logged once, when it ends
    mine = [r for r in lines if r.get("message_id") == message_id]
    assert [r["event"] for r in mine] == ["enqueued", "inside_actor", "succeeded"]
    for record in mine:
        assert record.keys() >= REQUIRED | {"level", "timestamp"}
        assert (record["correlation_id"], record["tenant_id"]) == ("req-9", 7)
    inside, succeeded = mine[1:]
    assert inside["token"] == "***"
    assert (succeeded["level"], succeeded["attempt"], succeeded["actor"]) == (
        "info",
        1,
        "quiet_info",
    )
    assert succeeded["duration_ms"] >= 0
    assert next(iter(succeeded)) == "duration_ms"  # as structlog orders the keyword arguments


def test_a_worker_at_debug_still_writes_the_started_line_with_the_same_fields(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker
) -> None:
    # Given the worker's logging configuration at DEBUG, when a message runs
    message_id, lines = _run_configured(gcmc_broker, worker, "DEBUG")
    # Then ``started`` is written before the actor's own events, at debug level, with
    # every field ``succeeded`` carries but the duration
    mine = [r for r in lines if r.get("message_id") == message_id]
    assert [r["event"] for r in mine] == ["enqueued", "started", "inside_actor", "succeeded"]
    started, succeeded = mine[1], mine[3]
    assert (started["level"], started["attempt"], started["actor"]) == ("debug", 1, "quiet_debug")
    assert (started["correlation_id"], started["tenant_id"]) == ("req-9", 7)
    assert started.keys() == succeeded.keys() - {"duration_ms"}
    assert {k: started[k] for k in REQUIRED | {"tenant_id"}} == {
        k: succeeded[k] for k in REQUIRED | {"tenant_id"}
    }


def _without_timestamp(line: str) -> str:
    return re.sub(r'"timestamp": "[0-9T:.-]+Z"', '"timestamp": "(time)"', line)


@pytest.mark.parametrize(
    ("actor_name", "options", "kwargs", "bound"),
    [
        ("plain", {"correlation_id": "c" * 32}, {}, {}),
        ("with_tenant", {"correlation_id": "c" * 32}, {"tenant_id": 7}, {}),
        ("tenant_option", {"correlation_id": "c", "tenant_id": "acme"}, {}, {}),
        ("spaced_tenant", {"correlation_id": "c"}, {"tenant_id": "acme corp"}, {}),
        ("rewritten_id", {"correlation_id": "https://u:pw@h/?token=x"}, {}, {}),
        ("odd_values", {"correlation_id": 42, "tenant_id": [1, 2]}, {}, {}),
        ('pct%s_"é\\', {"correlation_id": "%d%%"}, {"tenant_id": None}, {}),
        ("host_bound", {"correlation_id": "c"}, {}, {"request_id": "r-1", "attempt": 9}),
        ("from_context", {}, {}, {"correlation_id": "bound-1"}),
    ],
)
def test_the_started_and_succeeded_lines_are_the_lines_structlog_writes(
    actor_name: str, options: dict[str, Any], kwargs: dict[str, Any], bound: dict[str, Any]
) -> None:
    # Given the worker's logging configuration (JSON, DEBUG) and a message of any shape
    broker = StubBroker()
    middleware = StructuredLogging()

    @dramatiq.actor(broker=broker, actor_name=actor_name, queue_name="q_1")
    def shaped(tenant_id: Any = None) -> None: ...

    message = shaped.message_with_options(kwargs=kwargs, **options)
    fields: dict[str, Any] = {
        "message_id": message.message_id,
        "actor": actor_name,
        "queue": "q_1",
        "attempt": 1,
        "correlation_id": options.get("correlation_id", bound.get("correlation_id")),
    }
    tenant_id = options.get("tenant_id", kwargs.get("tenant_id"))
    if tenant_id is not None:
        fields["tenant_id"] = tenant_id
    stream = io.StringIO()
    previous = structlog.get_config()
    configure_logging(Settings(log_format="json", log_level="DEBUG"), stream=stream, cache=False)
    structlog.contextvars.bind_contextvars(**bound)
    try:
        # When it runs, and structlog logs the same events with the same fields
        middleware.before_process_message(broker, message)
        inside = structlog.contextvars.get_contextvars()
        middleware.after_process_message(broker, message)
        started, succeeded = stream.getvalue().splitlines()
        duration_ms = json.loads(succeeded)["duration_ms"]
        log = structlog.get_logger("t")
        log.debug("started", **fields)
        log.info("succeeded", **{"duration_ms": duration_ms, **fields})
        after = structlog.contextvars.get_contextvars()
    finally:
        structlog.configure(**previous)
        structlog.contextvars.clear_contextvars()
    # Then the lines are the same characters (but the time), the fields were bound while
    # it ran, and only while it ran
    expected = stream.getvalue().splitlines()[2:]
    assert [_without_timestamp(started), _without_timestamp(succeeded)] == [
        _without_timestamp(line) for line in expected
    ]
    assert inside == {**bound, **fields}
    assert after == bound


def test_a_reconfiguration_between_messages_takes_the_new_configuration_s_lines() -> None:
    # Given a middleware that has written an actor's lines through one configuration
    broker = StubBroker()
    middleware = StructuredLogging()

    @dramatiq.actor(broker=broker, queue_name="q_1")
    def job(tenant_id: Any = None) -> None: ...

    first, second = io.StringIO(), io.StringIO()
    previous = structlog.get_config()
    try:
        for stream, level in [(first, "DEBUG"), (second, "INFO")]:
            # When logging is configured anew (another stream, another level)
            configure_logging(
                Settings(log_format="json", log_level=level), stream=stream, cache=False
            )
            for kwargs in [{}, {"tenant_id": 7}]:
                message = job.message_with_options(kwargs=kwargs, correlation_id="c-1")
                middleware.before_process_message(broker, message)
                middleware.after_process_message(broker, message)
    finally:
        structlog.configure(**previous)
    # Then each message's lines went where the configuration in force sent them
    events = [
        [(r["event"], r.get("tenant_id")) for r in map(json.loads, s.getvalue().splitlines())]
        for s in (first, second)
    ]
    assert events == [
        [("started", None), ("succeeded", None), ("started", 7), ("succeeded", 7)],
        [("succeeded", None), ("succeeded", 7)],
    ]


def test_a_failure_neither_re_sent_nor_nacked_is_forgotten_when_the_next_message_starts() -> None:
    # Given a message that raised on a worker thread and was neither re-sent nor nacked
    # (no Retries in this stack)
    broker = StubBroker()
    middleware = StructuredLogging()

    @dramatiq.actor(broker=broker, queue_name="q_1")
    def job() -> None: ...

    failed = job.message_with_options(correlation_id="c-1")
    other = job.message_with_options(correlation_id="c-2")
    with capture_events() as events:
        middleware.before_process_message(broker, failed)
        middleware.after_process_message(broker, failed, exception=ValueError("boom"))
        # When the thread runs its next message, then sends the first again with a retry
        # count (as Retries would have)
        middleware.before_process_message(broker, other)
        middleware.after_process_message(broker, other)
        again = failed.copy(options={**failed.options, "retries": 1})
        middleware.before_enqueue(broker, again, None)
        middleware.after_enqueue(broker, again, None)
    # Then that send is a new message's, not a retry of the old failure
    assert [(e["event"], e["message_id"]) for e in events if e["event"] != "started"] == [
        ("succeeded", other.message_id),
        ("enqueued", failed.message_id),
    ]


def test_a_failure_re_sent_by_the_thread_that_ran_it_is_logged_as_retried() -> None:
    # Given a message that raised on a worker thread
    broker = StubBroker()
    middleware = StructuredLogging()

    @dramatiq.actor(broker=broker, queue_name="q_1")
    def job() -> None: ...

    failed = job.message_with_options(correlation_id="c-1")
    with capture_events() as events:
        middleware.before_process_message(broker, failed)
        middleware.after_process_message(broker, failed, exception=ValueError("boom"))
        # When it is sent again with a retry count (as Retries does), twice
        for _ in range(2):
            again = failed.copy(options={**failed.options, "retries": 1})
            middleware.before_enqueue(broker, again, 1000)
            middleware.after_enqueue(broker, again, 1000)
    # Then the first send is the retry, with the error, the second a new message's
    assert [(e["event"], e.get("error")) for e in events if e["event"] != "started"] == [
        ("retried", "ValueError: boom"),
        ("enqueued", None),
    ]
