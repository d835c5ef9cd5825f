"""gcmc_jobs.brokers.Pipelines: Dramatiq's Pipelines, skipped for a message outside a
pipeline; a pipeline still continues, with and without the previous result."""

from __future__ import annotations

import dramatiq
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from gcmc_jobs.brokers import Pipelines


def test_a_pipeline_continues_through_the_stacks_pipelines_and_a_lone_message_runs() -> None:
    # Given a stub broker with the stack's Pipelines (instead of Dramatiq's) and three actors
    broker = StubBroker(middleware=[Pipelines()])
    seen: list[tuple[str, tuple[object, ...]]] = []

    @dramatiq.actor(broker=broker, actor_name="double")
    def double(n: int) -> int:
        seen.append(("double", (n,)))
        return n * 2

    @dramatiq.actor(broker=broker, actor_name="record")
    def record(*args: int) -> None:
        seen.append(("record", args))

    @dramatiq.actor(broker=broker, actor_name="ping")
    def ping() -> str:
        seen.append(("ping", ()))
        return "pong"

    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        # When a pipeline fed by the result, one ignoring it, and a lone message run
        dramatiq.pipeline([double.message(3), record.message(1)], broker=broker).run()
        ignoring = record.message_with_options(args=(9,), pipe_ignore=True)
        dramatiq.pipeline([double.message(5), ignoring], broker=broker).run()
        ping.send()
        broker.join("default")
        worker.join()

        # Then each pipeline's next step got its message, the result appended or not
        assert sorted(seen) == sorted(
            [("double", (3,)), ("record", (1, 6)), ("double", (5,)), ("record", (9,)), ("ping", ())]
        )
    finally:
        worker.stop()
