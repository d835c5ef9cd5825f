"""Scenario 8: hostile input.

- Hypothesis-generated payloads for every email kind (one field at a time replaced by
  something hostile: control characters, header injection, template syntax, HTML, huge or
  empty strings, wrong types) either fail validation **at send time** with an error naming
  the field, and nothing is enqueued, or are delivered correctly; the worker never crashes.
- Template syntax in user data (``{{ 7*7 }}``, ``{% … %}``) renders as text.
- Malformed messages written straight into a Redis queue (not JSON; an unknown actor; a
  payload that never went through validation) end in the dead letters with a readable
  error, and the worker keeps working.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import dramatiq
import pytest
import redis
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from gcmc_jobs import queue_names as queues
from gcmc_jobs.email import KINDS, get_kind, validate_payload
from gcmc_jobs.errors import InvalidPayload
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.sending import queue_email
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import SmtpSink
from tests.faults.data import custom_email
from tests.faults.logs import dead_lettered, queue_is_drained
from tests.support import RedisServer, WorkerProcess, wait_until

HOSTILE_STRINGS = [
    "{{ 7*7 }}",
    "{% for x in range(3) %}loop{% endfor %}",
    "{{ config.items() }}{{ self.__init__.__globals__ }}",
    "<script>alert('x')</script>",
    'Jane"; DROP TABLE email_log; --',
    "line one\r\nBcc: victim@example.com",
    "tab\there",
    "nul\x00byte",
    "\u202eevil\u202c",
    "é漢字🙂",
    "",
    "   ",
    "x" * 20_000,
    "https://evil.example/\r\nX-Injected: 1",
    "javascript:alert(1)",
    '"a@b.c" <evil@x.com>',
    "c1\x85nel\x9bcsi",
    "line\u2028separator",
]
hostile_values = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


@pytest.fixture
def gcmc_settings(gcmc_postgres_url: str, gcmc_redis_url: str) -> Iterator[Settings]:
    """The stub broker and in-memory email, with a Redis namespace of this test alone,
    deleted after it (the dedup, rate-limit and status keys its messages leave)."""
    namespace = f"gcmc_faults_hostile_{uuid.uuid4().hex[:8]}"
    yield Settings(
        database_url=gcmc_postgres_url,
        broker_url="stub://",
        redis_url=gcmc_redis_url,
        namespace=namespace,
        email_url="memory://",
        log_format="json",
    )
    client = redis.Redis.from_url(gcmc_redis_url)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _valid_data(kind: str) -> dict[str, Any]:
    sample = get_kind(kind).model.sample()
    return json.loads(json.dumps({**sample.public_data(), **sample.secret_data()}, default=str))


def _parts(message: EmailMessage) -> dict[str, str]:
    return {
        part.get_content_type(): str(part.get_content())
        for part in message.walk()
        if part.get_content_maintype() == "text"
    }


def _drain(broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
    for queue in (queues.EMAIL, queues.EMAIL_CRITICAL):
        broker.join(queue)  # fail_fast: an exception in the actor fails the test
    worker.join()


@settings(max_examples=300)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    data=st.data(),
    value=hostile_values,
)
def test_hostile_payloads_fail_at_send_time_or_are_delivered_correctly(
    kind: str,
    data: st.DataObject,
    value: Any,
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_outbox: list[EmailMessage],
) -> None:
    # Given a valid payload of the kind with one field (or one digest item's field) replaced
    payload = _valid_data(kind)
    target: dict[str, Any] = payload
    if "items" in payload and data.draw(st.booleans(), label="in an item"):
        target = payload["items"][0]
    field = data.draw(st.sampled_from(sorted(target)), label="field")
    target[field] = value
    to = f"hostile-{uuid.uuid4().hex[:12]}@example.com"
    before = len(gcmc_outbox)

    # When the host sends it
    refused: InvalidPayload | None = None
    try:
        queue_email(kind, to, payload)
    except InvalidPayload as exc:
        refused = exc
    event("refused at send time" if refused is not None else "delivered")
    if refused is not None:
        # Then either it is refused in the caller, naming the field, and nothing is enqueued
        assert field in str(refused), str(refused)
        assert all(gcmc_broker.queues[q].qsize() == 0 for q in gcmc_broker.queues)
        return

    # Or it is delivered: one multipart email, headers intact, the worker unharmed
    _drain(gcmc_broker, gcmc_worker)
    assert len(gcmc_outbox) == before + 1
    message = gcmc_outbox[-1]
    assert message["To"] == to
    assert "\n" not in str(message["Subject"])
    assert "\r" not in str(message["Subject"])
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    parts = _parts(message)
    assert set(parts) == {"text/plain", "text/html"}
    if isinstance(value, str) and value.strip() and kind == "custom" and field == "subject":
        assert str(message["Subject"]) == value.strip() or value.strip() in str(message["Subject"])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_template_syntax_in_user_data_renders_as_text(
    kind: str,
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_outbox: list[EmailMessage],
) -> None:
    # Given every free-text field of the kind holds template syntax
    payload = _valid_data(kind)
    injected = "{{ 7*7 }} {% if true %}IF{% endif %} {{ config }}"
    injected_fields = []
    for name, current in list(payload.items()):
        if isinstance(current, str):  # every text field that accepts the syntax gets it
            try:
                validate_payload(kind, {**payload, name: injected})
            except InvalidPayload:
                continue
            payload[name] = injected
            injected_fields.append(name)
    assert injected_fields
    # When it is sent and delivered
    queue_email(kind, f"inject-{uuid.uuid4().hex[:10]}@example.com", payload)
    _drain(gcmc_broker, gcmc_worker)
    message = gcmc_outbox[-1]
    # Then the syntax arrives as text, never evaluated
    rendered = "\n".join([str(message["Subject"]), *_parts(message).values()])
    assert "{{ 7*7 }}" in rendered or "{{ 7*7 }}" in rendered.replace("&#123;", "{")
    assert "49" not in rendered.replace("{{ 7*7 }}", "")
    assert "{% if true %}IF{% endif %}" in rendered.replace("&#123;", "{")
    assert "<Config" not in rendered


def test_malformed_messages_in_a_redis_queue_are_dead_lettered_with_a_readable_error(
    fault_db: tuple[str, Engine],
    redis_server: RedisServer,
    smtp_server: SmtpSink,
    namespace: str,
    producer: Runtime,
    start_workers: Callable[..., WorkerProcess],
) -> None:
    # Given a running worker
    _, engine = fault_db
    client = redis_server.client()
    workers = start_workers(processes=1, threads=2)
    workers.wait_ready()

    # When messages that never went through send() are written straight into the queue
    def raw(queue: str, body: bytes, message_id: str | None = None) -> str:
        message_id = message_id or str(uuid.uuid4())
        client.hset(f"{namespace}:{queue}.msgs", message_id, body)
        client.rpush(f"{namespace}:{queue}", message_id)
        return message_id

    def message(actor: str, queue: str, **kwargs: Any) -> dramatiq.Message[Any]:
        built = dramatiq.Message(
            queue_name=queue, actor_name=actor, args=(), kwargs=kwargs, options={}
        )
        return built.copy(options={"redis_message_id": built.message_id})

    unknown_actor = message("no_such_actor", "gcmc_email")
    bad_payload = message(
        "send_email",
        "gcmc_email",
        kind="custom",
        to="victim@example.com",
        payload={"tenant_name": "Acme", "subject": "a\r\nBcc: x@example.com", "body": "b"},
    )
    for built in (unknown_actor, bad_payload):
        raw("gcmc_email", built.encode(), built.message_id)
    not_json = raw("gcmc_email", b"\x00\xff this is not a message {")
    # And a good email after them
    queue_email("custom", "after@example.com", custom_email(1, prefix="after"), dedup_key="after")

    # Then the good email is delivered: the worker kept working
    wait_until(
        lambda: smtp_server.count() == 1,
        timeout_s=60,
        what="the good email",
        diagnose=workers.log_tail,
    )

    # And each malformed message is dead-lettered, with an error a person can read
    def dead_rows() -> dict[str, tuple[str, str]]:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT message_id, error_type, error FROM dead_letters")
            ).all()
        return {r.message_id: (r.error_type, r.error) for r in rows}

    expected = {unknown_actor.message_id, bad_payload.message_id, not_json}
    rows = wait_until(
        lambda: (found := dead_rows()) and set(found) >= expected and found,
        timeout_s=60,
        what="the malformed messages in dead_letters",
        diagnose=workers.log_tail,
    )
    for message_id in expected:
        error_type, error = rows[message_id]
        assert error_type, message_id
        assert error, message_id
    assert "no_such_actor" in rows[unknown_actor.message_id][1]
    assert "subject" in rows[bad_payload.message_id][1]
    # The store took all three, so the broker's own dead-letter queue keeps none of them
    # (issue 11, item 15: it kept a second copy for 7 days)
    wait_until(
        lambda: dead_lettered(client, namespace, "gcmc_email") == 0,
        timeout_s=60,
        what="the broker's dead-letter queue emptied of what the store took",
        diagnose=workers.log_tail,
    )
    # Acknowledgements are written in batches (GCMC_JOBS_BROKER_ACK_BATCH_MS): drained soon after
    wait_until(
        lambda: queue_is_drained(client, namespace, "gcmc_email"),
        timeout_s=60,
        what="the queue drained (every message acknowledged)",
        diagnose=workers.log_tail,
    )
    assert workers.alive()
    print(f"\n[scenario 8] malformed=3 dead_lettered={len(rows)} errors={rows}")
