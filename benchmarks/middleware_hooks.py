"""In-process cost of the worker-side hooks of ``StructuredLogging``, ``Metrics`` and
Dramatiq's ``Pipelines`` (issue 17, item 2), without Redis or worker threads.

Run: ``.venv/bin/python benchmarks/middleware_hooks.py [--level INFO] [--n 20000]
[--baseline DIR]``.

Builds ``N`` no-op messages as our consumer hands them out (``_FieldsProxy``), configures
logging as the worker does (JSON through ``BufferedLineLogger``, here to ``/dev/null``) at
``--level``, and runs ``before_process_message`` then ``after_process_message`` of each
middleware alone and of the three together, reporting the process CPU time per message
(the log writer thread included; best of three). ``--baseline DIR`` runs the same in a
subprocess on the code of ``DIR`` (a checkout of an earlier commit), alternating with this
checkout, three times each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._baseline import measure_or_alternate  # noqa: E402


def measure(level: str, n: int) -> dict[str, float]:
    """µs of process CPU per message for each middleware's hooks, best of three."""
    # Imported here, after main() put the checkout to measure (--root) first on sys.path:
    # a module-level import would load this checkout's gcmc_jobs in the baseline's runs.
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    from gcmc_jobs.brokers import Pipelines  # the stack's (in older checkouts: Dramatiq's)
    from gcmc_jobs.brokers.redis_broker import _FieldsProxy
    from gcmc_jobs.logging import configure_logging
    from gcmc_jobs.middleware.metrics import Metrics
    from gcmc_jobs.middleware.structured_logging import StructuredLogging
    from gcmc_jobs.settings import Settings

    sink = open(os.devnull, "w")  # noqa: SIM115 (kept open for the log thread)
    configure_logging(Settings(log_format="json", log_level=level), stream=sink, buffer_ms=100)
    broker = StubBroker()

    @dramatiq.actor(broker=broker, queue_name="bench_hooks")
    def noop(i: int) -> None:
        pass

    messages = [
        _FieldsProxy(noop.message_with_options(args=(i,), correlation_id="c" * 32))
        for i in range(n)
    ]
    logging_mw, metrics_mw, pipelines_mw = StructuredLogging(), Metrics(), Pipelines()

    def run(middleware: list[Any]) -> float:
        started = time.process_time()
        for message in messages:
            for m in middleware:
                m.before_process_message(broker, message)
            for m in reversed(middleware):
                m.after_process_message(broker, message, result=None, exception=None)
        return (time.process_time() - started) / n * 1e6

    cases = {
        "StructuredLogging": [logging_mw],
        "Metrics": [metrics_mw],
        "Pipelines": [pipelines_mw],
        "the three": [pipelines_mw, logging_mw, metrics_mw],
    }
    return {name: min(run(mw) for _ in range(3)) for name, mw in cases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--level", default="INFO", help="log level (INFO)")
    parser.add_argument("--n", type=int, default=20_000, help="messages (20,000)")
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier commit")
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)  # the code to measure
    args = parser.parse_args()
    measure_or_alternate(
        __file__,
        ["--level", args.level, "--n", str(args.n)],
        args.root,
        args.baseline,
        lambda: measure(args.level, args.n),
    )


if __name__ == "__main__":
    main()
