"""Redis URLs, plain and ``redis+sentinel://``: parsing, the clear error of a malformed one,
and the clients every part of gcmc-jobs builds from one (on a real primary, replica and
three Sentinels)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from pydantic import ValidationError
from sqlalchemy import Engine

from gcmc_jobs.bootstrap import configured
from gcmc_jobs.brokers.redis_broker import RedisBroker
from gcmc_jobs.ops.failures import mask_secrets
from gcmc_jobs.ops.health import check_health
from gcmc_jobs.ops.redis_client import redis_client
from gcmc_jobs.redaction import redact_text
from gcmc_jobs.redis_keys import messages_key, paused_key
from gcmc_jobs.redis_urls import SentinelUrl, parse_sentinel_url, redis_from_url
from gcmc_jobs.settings import Settings
from tests.support import SentinelGroup, wait_until


def test_a_sentinel_url_names_the_sentinels_the_master_the_db_and_both_passwords() -> None:
    parsed = parse_sentinel_url(
        "redis+sentinel://app:p%40ss@s1.example:26380,s2.example,[::1]:26381/mymaster/3"
        "?sentinel_password=s3cret&sentinel_username=watcher"
    )
    assert parsed == SentinelUrl(
        service_name="mymaster",
        sentinels=(("s1.example", 26380), ("s2.example", 26379), ("::1", 26381)),
        db=3,
        username="app",
        password="p@ss",
        sentinel_username="watcher",
        sentinel_password="s3cret",
    )


def test_a_minimal_sentinel_url_defaults_to_db_0_and_no_password() -> None:
    parsed = parse_sentinel_url("REDIS+SENTINEL://:only-pass@127.0.0.1/main")
    assert parsed == SentinelUrl("main", (("127.0.0.1", 26379),), password="only-pass")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+sentinel://:hunter22@/mymaster", "no Sentinel host"),
        ("redis+sentinel://:hunter22@h1:26379,,h2/mymaster", "empty one between commas"),
        ("redis+sentinel://:hunter22@h1:26379", "no master name"),
        ("redis+sentinel://:hunter22@h1:26379/", "no master name"),
        ("redis+sentinel://:hunter22@h1:port/mymaster", "not a number"),
        ("redis+sentinel://:hunter22@h1:70000/mymaster", "not a number"),
        ("redis+sentinel://:hunter22@h1/mymaster/zero", "/<master name>[/<db number>]"),
        ("redis+sentinel://:hunter22@h1/mymaster/0/x", "/<master name>[/<db number>]"),
        ("redis+sentinel://:hunter22@h1/mymaster?password=x", "unknown query parameter"),
        ("redis+sentinel://:hunter22@[::1/mymaster", "IPv6"),
    ],
)
def test_a_malformed_sentinel_url_says_what_is_wrong_without_echoing_it(
    url: str, reason: str
) -> None:
    with pytest.raises(ValueError, match="malformed Sentinel URL") as raised:
        parse_sentinel_url(url)
    assert reason in str(raised.value)
    assert "expected redis+sentinel://host1:26379,host2:26379/mymaster[/db]" in str(raised.value)
    assert redact_text(str(raised.value)) == str(raised.value)  # nothing the CLI would mask
    assert "hunter22" not in str(raised.value)


def test_settings_refuse_a_malformed_sentinel_url_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="GCMC_JOBS_BROKER_URL: malformed Sentinel URL"):
        Settings(broker_url="redis+sentinel://:hunter22@h1:26379")
    with pytest.raises(ValidationError, match="GCMC_JOBS_REDIS_URL: malformed Sentinel URL"):
        Settings(broker_url="stub://", redis_url="redis+sentinel://h1:26379,/m")
    settings = Settings(broker_url="redis+sentinel://h1,h2/mymaster")
    assert settings.broker_kind == "redis"
    assert settings.store_redis_url == "redis+sentinel://h1,h2/mymaster"


def test_the_sentinel_passwords_go_to_the_sentinels_and_the_data_password_to_the_primary() -> None:
    client = redis_from_url(
        "redis+sentinel://:data-pass@127.0.0.1:1,127.0.0.1:2/mymaster/2"
        "?sentinel_password=watch-pass",
        socket_timeout=1.5,
    )
    pool = client.connection_pool
    assert pool.service_name == "mymaster"
    assert pool.connection_kwargs["password"] == "data-pass"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["socket_timeout"] == 1.5
    sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(k["port"], k["password"], k["socket_timeout"]) for k in sentinels] == [
        (1, "watch-pass", 1.5),
        (2, "watch-pass", 1.5),
    ]
    client.close()


def test_a_plain_url_still_builds_a_plain_client(gcmc_redis_url: str) -> None:
    client = redis_from_url(gcmc_redis_url)
    assert type(client) is redis.Redis
    assert client.ping()
    client.close()


@pytest.fixture(scope="module")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    group = SentinelGroup(Path(tmp_path_factory.mktemp("sentinel"))).start()
    try:
        yield group
    finally:
        group.stop()


def test_the_broker_stores_and_health_checks_use_the_primary_a_sentinel_url_names(
    sentinel_group: SentinelGroup, gcmc_db: Engine, gcmc_postgres_url: str
) -> None:
    # Given settings that name Redis only by its Sentinels
    namespace = f"gcmc_sentinel_{uuid.uuid4().hex[:10]}"
    settings = Settings(
        database_url=gcmc_postgres_url, broker_url=sentinel_group.url, namespace=namespace
    )
    primary = sentinel_group.primary.client()
    replica = sentinel_group.replica.client()
    with configured(settings) as runtime, contextlib.closing(primary), contextlib.closing(replica):
        # When the broker enqueues, a store writes and an operation reads
        broker = runtime.broker
        broker.client.set(f"{namespace}:client-probe", "broker")
        # (enqueue goes through the broker's own connections: ScriptRunner's, not the pool's)
        sent = broker.enqueue(
            dramatiq.Message(queue_name="probe", actor_name="probe", args=(), kwargs={}, options={})
        )
        assert runtime.stores.pauses.pause("reports")
        ops = redis_client(settings.broker_url.get_secret_value())
        assert ops.smembers(paused_key(namespace)) == {b"reports"}
        ops.close()
        report = check_health(settings, engine=gcmc_db, checks=["broker", "redis"])

    # Then every write landed on the primary (a replica refuses writes)
    assert primary.get(f"{namespace}:client-probe") == b"broker"
    assert primary.hexists(messages_key(namespace, "probe"), sent.options["redis_message_id"])
    assert primary.sismember(paused_key(namespace), "reports")
    assert report.checks["broker"].status == "ok", report.to_json()
    assert report.checks["redis"].status in ("ok", "warning"), report.to_json()
    with pytest.raises(redis.ReadOnlyError):
        replica.set(f"{namespace}:client-probe", "replica")


def test_error_messages_mask_both_passwords_of_a_sentinel_url() -> None:
    settings = Settings(
        broker_url="redis+sentinel://:data-pass@h1,h2/mymaster?sentinel_password=watch-pass"
    )
    text = mask_secrets("AUTH failed with data-pass, then watch-pass", settings)
    assert "data-pass" not in text
    assert "watch-pass" not in text


def test_clients_follow_a_failover_that_leaves_the_old_primary_running_as_a_replica(
    tmp_path: Path,
) -> None:
    # Given a client and a broker (whose enqueue holds a connection of its own) that have
    # written to the primary
    group = SentinelGroup(tmp_path / "sentinel").start()
    client = redis_from_url(group.url, socket_timeout=2, socket_connect_timeout=2)
    broker = RedisBroker(client=client, namespace="gcmc_failover", middleware=[])  # type: ignore[no-untyped-call]
    try:
        client.set("before", "1")
        broker.enqueue(_probe())

        # When an operator fails over (SENTINEL FAILOVER): the old primary stays up, demoted
        with contextlib.closing(group.sentinel()) as sentinel:
            sentinel.sentinel_failover(SentinelGroup.SERVICE)
        wait_until(
            lambda: group.primary_ports() == {group.replica.port},
            timeout_s=30,
            what="every Sentinel to name the promoted replica",
        )
        # (the Sentinels demote the old primary at their next look, up to 10 s later: done
        # here at once, as they would)
        with contextlib.closing(group.primary.client()) as old:
            old.replicaof("127.0.0.1", group.replica.port)

        # Then the next writes (a READONLY refusal from the old primary, then a retry) land
        # on the new primary
        client.set("after", "2")
        sent = broker.enqueue(_probe())
        with contextlib.closing(group.replica.client()) as new_primary:
            assert new_primary.get("after") == b"2"
            assert new_primary.hexists(
                messages_key("gcmc_failover", "probe"), sent.options["redis_message_id"]
            )
    finally:
        client.close()
        group.stop()


def _probe() -> dramatiq.Message[object]:
    return dramatiq.Message(queue_name="probe", actor_name="probe", args=(), kwargs={}, options={})


def test_the_clients_gcmc_jobs_builds_parse_replies_in_c() -> None:
    """pyproject asks for ``redis[hiredis]``: every client (and so the broker's connections)
    parses replies with hiredis, not redis-py's pure-Python parser (issue 17)."""
    client = redis_from_url("redis://127.0.0.1:6379/0")
    connection = client.connection_pool.make_connection()  # built, not connected
    try:
        assert type(connection._parser).__name__ == "_HiredisParser"
    finally:
        connection.disconnect()
        client.close()
