"""What the pause test's ``dramatiq`` worker subprocess loads: gcmc-jobs configured from
``GCMC_JOBS_*`` (so the whole middleware stack, ``Pause`` included) plus two test actors that
record each run in a Redis list."""

from __future__ import annotations

import dramatiq
import redis

from gcmc_jobs.bootstrap import configure
from gcmc_jobs.settings import Settings

settings = Settings()
broker = configure(settings, set_global=True).broker
_client = redis.Redis.from_url(settings.broker_url.get_secret_value())


def done_key(queue: str) -> str:
    """The Redis list where the test actor of ``queue`` records what it ran."""
    return f"{settings.namespace}:test:done:{queue}"


@dramatiq.actor(broker=broker, queue_name="ops_held")
def held(n: int) -> None:
    _client.rpush(done_key("ops_held"), n)


@dramatiq.actor(broker=broker, queue_name="ops_flowing")
def flowing(n: int) -> None:
    _client.rpush(done_key("ops_flowing"), n)
