"""The test suite's harness: one of each thing a test starts or waits on.

- :func:`wait_until`: poll a condition, boundedly; on timeout the failure says what was
  awaited and a diagnosis (a worker's log tail). Every wait of the suite uses it.
- :func:`dramatiq_worker` / :func:`periodiq_scheduler`: a real ``dramatiq`` / ``periodiq``
  process (:class:`~gcmc_jobs.testing.WorkerProcess`) with this repository importable, so
  it can load the suite's own actor modules (``tests.ops.pause_worker_app``, ...).
- :class:`RedisServer` and :class:`PostgresCluster` (:mod:`tests.support.services`): private
  servers a test may stop or crash; the ``own_redis`` fixture (``tests/conftest.py``) is a
  started :class:`RedisServer`.
- The SMTP sink is the packaged one (:class:`gcmc_jobs.testing.SmtpSink`, fixture
  ``smtp_server``), as are :func:`wait_until` and the worker class: host applications use
  them too.

No test asserts on elapsed time: every timeout bounds a hang.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gcmc_jobs.testing import WorkerProcess, free_port, wait_until
from tests.support.services import PostgresCluster, RedisServer, SentinelGroup

__all__ = [
    "REPO_ROOT",
    "PostgresCluster",
    "RedisServer",
    "SentinelGroup",
    "WorkerProcess",
    "dramatiq_worker",
    "free_port",
    "periodiq_scheduler",
    "wait_until",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


def dramatiq_worker(env: Mapping[str, str], log_path: Path, **options: Any) -> WorkerProcess:
    """``python -m dramatiq gcmc_jobs.worker`` (or ``modules=...``) with ``env`` as its
    ``GCMC_JOBS_*`` settings, the repository on its ``PYTHONPATH``; not started yet.
    ``options`` are those of :meth:`WorkerProcess.dramatiq` (``processes``, ``threads``,
    ``queues``, ``modules``, ``shutdown_timeout_ms``, ``cwd``)."""
    return WorkerProcess.dramatiq(env=env, log_path=log_path, pythonpath=[REPO_ROOT], **options)


def periodiq_scheduler(env: Mapping[str, str], log_path: Path) -> WorkerProcess:
    """``periodiq gcmc_jobs.worker`` with ``env`` as its settings; not started yet."""
    return WorkerProcess.periodiq(env=env, log_path=log_path, pythonpath=[REPO_ROOT])
