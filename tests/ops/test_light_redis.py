"""The command line's standard-library Redis client, and the queue stats read with it, against
the real Redis (and a private password-protected one)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from redis.connection import parse_url as redis_py_parse_url

from gcmc_jobs import queue_names
from gcmc_jobs.cli._env import RedisCommandSettings, redis_command_settings
from gcmc_jobs.ops.failures import explain
from gcmc_jobs.ops.light_redis import LightRedis, RedisAddress, parse_url
from gcmc_jobs.ops.pauses import pause_queue
from gcmc_jobs.ops.queue_stats import queue_stats, redis_queue_stats
from gcmc_jobs.redis_keys import paused_key, workers_key
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing.ports import free_port
from tests.support.services import RedisServer

AS_REDIS_PY = [
    "redis://localhost",
    "redis://127.0.0.1:6380",
    "redis://127.0.0.1:6380/3",
    "redis://:p%40ss@db.example:7000/2",
    "redis://user:secret@db.example/5",
    "redis://127.0.0.1:6379?db=4",
    "redis://127.0.0.1:6379/",
    "unix:///run/redis.sock",
    "unix://:secret@/run/redis.sock?db=2",
]


@pytest.mark.parametrize("url", AS_REDIS_PY)
def test_urls_are_read_as_redis_py_reads_them(url: str) -> None:
    theirs = redis_py_parse_url(url)
    ours = parse_url(url)

    assert ours is not None
    expected = RedisAddress(
        host=theirs.get("host", "localhost"),
        port=theirs.get("port", 6379),
        path=theirs.get("path"),
        db=theirs.get("db", 0),
        username=theirs.get("username"),
        password=theirs.get("password"),
    )
    assert ours == expected


@pytest.mark.parametrize(
    "url",
    [
        "rediss://db.example:6380/0",  # TLS: redis-py
        "redis://127.0.0.1:6379/0?socket_timeout=5",  # an option: redis-py
        "redis://127.0.0.1:notaport/0",
        "redis://127.0.0.1:6379/zero",
        "amqp://guest:guest@127.0.0.1:5672/",
        "stub://",
    ],
)
def test_urls_it_leaves_to_redis_py(url: str) -> None:
    assert parse_url(url) is None


def test_commands_are_sent_in_one_write_and_answered_in_order(
    gcmc_redis_url: str, gcmc_namespace: str
) -> None:
    address = parse_url(gcmc_redis_url)
    assert address is not None
    key = f"{gcmc_namespace}:light:{uuid.uuid4().hex}"
    with LightRedis(address) as client:
        replies = client.execute(
            ["SET", key, "é\r\nvalue"],
            ["GET", key],
            ["GET", f"{key}:missing"],
            ["RPUSH", f"{key}:list", "a", b"\x00b"],
            ["LRANGE", f"{key}:list", 0, -1],
            ["EVAL", "return {1, 'x', false}", 0],
        )
        client.execute(["DEL", key, f"{key}:list"])

    assert replies == [
        b"OK",
        "é\r\nvalue".encode(),
        None,
        2,
        [b"a", b"\x00b"],
        [1, b"x", None],
    ]


def test_an_error_reply_is_redis_py_response_error_and_the_connection_stays_usable(
    gcmc_redis_url: str,
) -> None:
    address = parse_url(gcmc_redis_url)
    assert address is not None
    with LightRedis(address) as client:
        with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
            client.execute(["NOSUCHCOMMAND"], ["PING"])
        assert client.execute(["PING"]) == [b"PONG"]


def test_the_database_of_the_url_is_selected(gcmc_redis_url: str, gcmc_namespace: str) -> None:
    address = parse_url(gcmc_redis_url)
    assert address is not None
    key = f"{gcmc_namespace}:light-db:{uuid.uuid4().hex}"
    other = redis.Redis(host=address.host, port=address.port, db=7)
    try:
        other.set(key, "in db 7", ex=60)
        db7 = RedisAddress(host=address.host, port=address.port, db=7)
        with LightRedis(db7) as client:
            assert client.execute(["GET", key]) == [b"in db 7"]
        with LightRedis(RedisAddress(host=address.host, port=address.port, db=0)) as client:
            assert client.execute(["GET", key]) == [None]
    finally:
        other.delete(key)
        other.close()


def test_a_password_is_sent_and_a_wrong_one_refused(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", password="s3cret").start()
    try:
        address = parse_url(server.url)
        assert address is not None
        assert address.password == "s3cret"
        with LightRedis(address) as client:
            assert client.execute(["PING"]) == [b"PONG"]
        wrong = parse_url(server.url.replace("s3cret", "wrong"))
        assert wrong is not None
        with pytest.raises(redis.exceptions.AuthenticationError):
            LightRedis(wrong)
    finally:
        server.kill()


def test_an_unreachable_redis_is_redis_py_connection_error_naming_the_address() -> None:
    port = free_port()
    with pytest.raises(redis.exceptions.ConnectionError) as raised:
        LightRedis(RedisAddress(host="127.0.0.1", port=port))

    assert f"connecting to 127.0.0.1:{port}" in str(raised.value)
    # ... which the command line explains as it does redis-py's: the setting at fault.
    settings = Settings(broker_url=f"redis://127.0.0.1:{port}/0")
    failure = explain(raised.value, settings)
    assert failure.kind == "unavailable"
    assert failure.settings == ("GCMC_JOBS_BROKER_URL",)


def test_redis_queue_stats_match_queue_stats(
    redis_settings: Settings, gcmc_redis_url: str, redis_client: redis.Redis
) -> None:
    # Given a queue of a registered worker with ready and delayed messages, one of the
    # package's queues paused
    namespace = redis_settings.namespace
    broker = RedisBroker(url=gcmc_redis_url, namespace=namespace)
    try:

        @dramatiq.actor(broker=broker, queue_name="ops_light")
        def noop(n: int) -> None: ...

        for n in range(3):
            noop.send(n)
        noop.send_with_options(args=(9,), delay=60_000)
    finally:
        broker.close()
    redis_client.hset(workers_key(namespace), "w1", json.dumps({"queues": ["ops_light"]}))
    pause_queue(redis_settings, queue_names.EMAIL)
    address = parse_url(gcmc_redis_url)
    assert address is not None

    # When both read them at the same instant
    ours = redis_queue_stats(address, namespace, timeout_ms=2_000, now_ms=10**13)
    theirs = queue_stats(redis_settings, now_ms=10**13)

    # Then they agree, field by field
    assert ours == theirs
    by_name = {s.name: s for s in ours}
    assert (by_name["ops_light"].ready, by_name["ops_light"].delayed) == (3, 1)
    assert by_name[queue_names.EMAIL].paused is True


def test_the_pause_set_is_read_on_the_stores_redis_when_it_is_another(
    redis_settings: Settings, gcmc_redis_url: str, own_redis: RedisServer
) -> None:
    namespace = redis_settings.namespace
    stores_client = own_redis.client()
    try:
        stores_client.sadd(paused_key(namespace), queue_names.COMPLIANCE)
    finally:
        stores_client.close()
    broker, stores = parse_url(gcmc_redis_url), parse_url(own_redis.url)
    assert broker is not None
    assert stores is not None

    stats = redis_queue_stats(broker, namespace, stores=stores)

    assert {s.name for s in stats if s.paused} == {queue_names.COMPLIANCE}


def test_the_command_settings_are_read_as_settings_reads_them(gcmc_redis_url: str) -> None:
    env = {
        "GCMC_JOBS_BROKER_URL": gcmc_redis_url,
        "gcmc_jobs_namespace": "ns:one",  # pydantic-settings matches names in any case
        "GCMC_JOBS_HEALTH_TIMEOUT_MS": "1500",
        "GCMC_JOBS_EMAIL_URL": "garbage",  # not read by the command
    }
    read = redis_command_settings(env)

    full = Settings(
        broker_url=gcmc_redis_url, namespace="ns:one", health_timeout_ms=1500
    )  # what Settings() would make of the same variables
    address = parse_url(full.broker_url.get_secret_value())
    assert address is not None
    assert read == RedisCommandSettings(
        broker=address, stores=address, namespace=full.namespace, timeout_ms=1500
    )
    stores = "redis://127.0.0.1:6390/2"
    with_stores = redis_command_settings({**env, "GCMC_JOBS_REDIS_URL": stores})
    assert with_stores is not None
    assert with_stores.stores == parse_url(stores)


@pytest.mark.parametrize(
    "env",
    [
        {},  # the stub broker by default
        {"GCMC_JOBS_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/"},
        {"GCMC_JOBS_BROKER_URL": "garbage"},
        {"GCMC_JOBS_BROKER_URL": "redis://127.0.0.1:6379/0", "GCMC_JOBS_NAMESPACE": "a b"},
        {"GCMC_JOBS_BROKER_URL": "redis://127.0.0.1:6379/0", "GCMC_JOBS_HEALTH_TIMEOUT_MS": "0"},
        {"GCMC_JOBS_BROKER_URL": "redis://127.0.0.1:6379/0", "GCMC_JOBS_HEALTH_TIMEOUT_MS": "x"},
        {"GCMC_JOBS_BROKER_URL": "redis://127.0.0.1:6379/0", "GCMC_JOBS_REDIS_URL": "http://x"},
        {"GCMC_JOBS_BROKER_URL": "redis://a/0", "gcmc_jobs_broker_url": "redis://b/0"},
    ],
)
def test_the_full_settings_are_built_for_anything_else(env: dict[str, str]) -> None:
    # None: the command builds Settings(), which explains an invalid value as usual.
    assert redis_command_settings(env) is None
