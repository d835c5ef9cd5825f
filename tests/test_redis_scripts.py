"""ScriptRunner packs its commands itself: the bytes redis-py would send, and the script runs."""

from __future__ import annotations

import uuid

import pytest
import redis
from redis.connection import Encoder, PythonRespSerializer

from gcmc_jobs.redis_scripts import ScriptRunner, pack_command


def test_a_command_is_packed_as_redis_py_packs_it() -> None:
    encoder = Encoder("utf-8", "strict", False)
    serializer = PythonRespSerializer(6000, encoder.encode)
    args = ("EVALSHA", "abc", 2, "k1", "clé", b"\x00\r\n", 1.5, -3, 10**20, "x" * 10_000)

    assert pack_command(*args) == b"".join(serializer.pack(*args))


def test_a_value_redis_py_refuses_is_refused() -> None:
    with pytest.raises(TypeError, match="not <class 'bool'>"):
        pack_command("SET", "k", True)
    with pytest.raises(TypeError, match="NoneType"):
        pack_command("SET", "k", None)


def test_the_runner_runs_its_script_with_many_arguments(gcmc_redis_url: str) -> None:
    client = redis.Redis.from_url(gcmc_redis_url)
    keys = [f"gcmc_test_scripts:{uuid.uuid4().hex}:{n}" for n in range(1_000)]
    try:
        script = client.register_script(
            "for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i]) end return #KEYS"
        )
        runner = ScriptRunner(client, script)
        assert runner(keys, [f"v{n}" for n in range(1_000)]) == 1_000
        assert client.get(keys[999]) == b"v999"
        assert runner(keys[:1], ["again"]) == 1  # the same held connection
    finally:
        client.delete(*keys)
        client.close()
