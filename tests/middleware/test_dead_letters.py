"""DeadLetters: a message that failed for good is stored once, whole, and replays."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import dramatiq
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gcmc_jobs.bootstrap import start_worker
from gcmc_jobs.brokers.redis_broker import RedisBroker
from gcmc_jobs.db.models import DeadLetter
from gcmc_jobs.errors import PermanentError
from gcmc_jobs.middleware import DeadLetters, SqlDeadLetterStore, StubDeadLetterStore
from gcmc_jobs.ops import dead_letters as service
from gcmc_jobs.testing import capture_events, wait_until
from tests.middleware.conftest import middleware_of


def _rows(engine: Engine) -> list[DeadLetter]:
    with Session(engine) as session:
        return list(session.scalars(select(DeadLetter)))


def test_a_message_failing_three_times_then_for_good_is_stored_once_and_replays(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker, gcmc_db: Engine
) -> None:
    # Given an actor that fails until told otherwise, allowed two retries
    state = {"fail": True, "calls": 0}

    @dramatiq.actor(broker=gcmc_broker, max_retries=2, min_backoff=1, max_backoff=2)
    def fragile(account: int, *, note: str) -> None:
        state["calls"] += 1
        if state["fail"]:
            raise RuntimeError(f"account {account} unreachable")

    # When it is sent and fails three times
    message = fragile.send_with_options(args=(7,), kwargs={"note": "x"}, tenant_id=3)
    gcmc_broker.join(fragile.queue_name, fail_fast=False)
    worker.join()

    # Then it is in dead_letters once, with its whole call
    assert state["calls"] == 3
    (row,) = _rows(gcmc_db)
    assert row.message_id == message.message_id
    assert (row.actor, row.queue, row.args, row.kwargs) == (
        "fragile",
        "default",
        [7],
        {"note": "x"},
    )
    assert row.options["tenant_id"] == 3
    assert row.error_type == "builtins.RuntimeError"
    assert row.error == "account 7 unreachable"
    assert row.traceback is not None
    assert "RuntimeError" in row.traceback
    assert row.attempts == 3

    # When it is replayed after the cause is fixed
    state["fail"] = False
    store = SqlDeadLetterStore(gcmc_db)
    (result,) = service.replay_dead_letters(store, gcmc_broker, ids=[row.id])
    gcmc_broker.join(fragile.queue_name, fail_fast=False)  # the first failure stays recorded
    worker.join()

    # Then it ran once more, as a new message with fresh retries, and the replay is recorded
    assert result.status == "replayed"
    assert result.replayed_as not in (None, message.message_id)
    assert state["calls"] == 4
    (row,) = _rows(gcmc_db)
    assert row.replayed_as == result.replayed_as
    assert row.replayed_at is not None
    # And a second replay of the same id is refused unless asked again
    (again,) = service.replay_dead_letters(store, gcmc_broker, ids=[row.id])
    assert again.status == "already_replayed"


def test_a_permanent_error_is_dead_lettered_at_once(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker, gcmc_db: Engine
) -> None:
    @dramatiq.actor(broker=gcmc_broker, max_retries=5, throws=(PermanentError,))
    def doomed() -> None:
        raise PermanentError("no such recipient")

    doomed.send()
    gcmc_broker.join(doomed.queue_name, fail_fast=False)
    worker.join()
    (row,) = _rows(gcmc_db)
    assert row.attempts == 1
    assert row.error_type == "gcmc_jobs.errors.PermanentError"


class BrokenStore(StubDeadLetterStore):
    """A dead-letter store whose database is down."""

    def add(self, record: Any) -> None:
        raise ConnectionError("database unreachable")


def test_when_the_store_is_down_the_message_stays_in_the_brokers_dead_letter_queue(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker
) -> None:
    middleware_of(gcmc_broker, DeadLetters).store = BrokenStore()

    @dramatiq.actor(broker=gcmc_broker, max_retries=0)
    def fails() -> None:
        raise RuntimeError("boom")

    with capture_events() as events:
        message = fails.send()
        gcmc_broker.join(fails.queue_name, fail_fast=False)
        worker.join()

    assert [m.message_id for m in gcmc_broker.dead_letters] == [message.message_id]
    (error,) = [e for e in events if e["event"] == "dead_letter_store_failed"]
    assert error["log_level"] == "error"
    assert error["message_id"] == message.message_id
    assert "database unreachable" in error["error"]


def test_show_masks_secrets_and_purge_deletes_old_ones(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker
) -> None:
    store = StubDeadLetterStore()
    middleware_of(gcmc_broker, DeadLetters).store = store

    @dramatiq.actor(broker=gcmc_broker, max_retries=0)
    def send_reset(to: str, reset_link: str, smtp_url: str) -> None:
        raise RuntimeError(f"could not send {reset_link}")

    send_reset.send(
        "a@example.com",
        "https://portal.example/reset/S3CRET-TOKEN",
        "smtp://mailer:hunter2@smtp.example:587",
    )
    gcmc_broker.join(send_reset.queue_name, fail_fast=False)
    worker.join()

    (record,) = service.list_dead_letters(store, actor="send_reset")
    assert record.id is not None
    shown = service.show_dead_letter(store, record.id)
    text = repr(shown)
    assert "S3CRET-TOKEN" not in text
    assert "hunter2" not in text
    assert shown["args"][0] == "a@example.com"
    assert "S3CRET-TOKEN" in repr(service.show_dead_letter(store, record.id, masked=False))

    assert service.purge_dead_letters(store, older_than=timedelta(days=1)) == 0
    assert service.purge_dead_letters(store, older_than=timedelta(0)) == 1
    assert store.find() == []


@pytest.mark.parametrize("store_kind", ["sql", "stub"])
def test_list_filters_by_actor_queue_error_and_time(
    gcmc_sqlite_db: Engine, store_kind: str
) -> None:
    from datetime import UTC, datetime, timedelta

    from gcmc_jobs.middleware import DeadLetterRecord

    store = SqlDeadLetterStore(gcmc_sqlite_db) if store_kind == "sql" else StubDeadLetterStore()
    old = datetime.now(UTC) - timedelta(days=3)
    for n, (actor, error, when) in enumerate(
        [("a", "X", old), ("a", "Y", datetime.now(UTC)), ("b", "X", datetime.now(UTC))]
    ):
        record = DeadLetterRecord(
            message_id=f"m{n}", queue="q", actor=actor, args=[], kwargs={}, options={},
            error_type=error, error="", traceback=None, attempts=1, failed_at=when,
        )  # fmt: skip
        store.add(record)
        store.add(record)  # idempotent per message id
    assert len(service.list_dead_letters(store)) == 3
    assert [r.message_id for r in service.list_dead_letters(store, actor="a")] == ["m1", "m0"]
    assert [r.message_id for r in service.list_dead_letters(store, error="X")] == ["m2", "m0"]
    since = datetime.now(UTC) - timedelta(days=1)
    assert {r.message_id for r in service.list_dead_letters(store, since=since)} == {"m1", "m2"}
    assert service.list_dead_letters(store, queue="other") == []


def test_a_failed_attempt_gives_the_attempt_count_of_its_own_nack_only() -> None:
    # Given a DeadLetters on a stub broker and an attempt that raised, remembered by the
    # after hook before Retries counted it (retries 0 -> 1)
    store = StubDeadLetterStore()
    dead_letters = DeadLetters(store)
    broker = StubBroker(middleware=[dead_letters])

    @dramatiq.actor(broker=broker)
    def flaky() -> None: ...

    sent = flaky.message()
    first = MessageProxy(sent)
    dead_letters.after_process_message(broker, first, exception=RuntimeError("boom"))
    first.options["retries"] = 1

    # When its retry (another delivery of the same message id, on the same thread) is
    # failed without an exception (no after hook remembered it) and nacked
    retry = MessageProxy(sent.copy())
    retry.fail()
    dead_letters.after_nack(broker, retry)

    # Then its record counts the retry's own attempt, not the remembered one's
    (record,) = store.find()
    assert (record.message_id, record.attempts) == (sent.message_id, 2)


@pytest.mark.parametrize("order", ["retries first", "dead letters first"])
@pytest.mark.parametrize("kind", ["stub", "redis"])
def test_a_dead_letter_counts_the_attempt_that_failed_in_either_order(
    kind: str, order: str, gcmc_redis_url: str, gcmc_namespace: str
) -> None:
    # Given DeadLetters and Retries in either order, on a broker that calls every hook (the
    # stub) or one that selects them per message shape (ours), and an actor that always
    # fails with one retry allowed
    store = StubDeadLetterStore()
    pair: list[Any] = [Retries(min_backoff=1, max_backoff=1), DeadLetters(store)]
    middleware = pair if order == "retries first" else pair[::-1]
    namespace = f"{gcmc_namespace}:dl_order_{uuid.uuid4().hex[:10]}"  # deleted with it
    broker: dramatiq.Broker = (
        StubBroker(middleware=middleware)
        if kind == "stub"
        else RedisBroker(url=gcmc_redis_url, namespace=namespace, middleware=middleware)
    )

    @dramatiq.actor(broker=broker, max_retries=1, queue_name="dl_order")
    def always_fails() -> None:
        raise RuntimeError("boom")

    worker = start_worker(dramatiq.Worker(broker, worker_threads=1, worker_timeout=50))
    try:
        # When a message of it runs twice and fails for good
        always_fails.send()
        wait_until(lambda: len(store.find()) == 1, what="the dead letter")
    finally:
        worker.stop()

    # Then its record counts the two attempts, not three
    (record,) = store.find()
    assert record.attempts == 2
