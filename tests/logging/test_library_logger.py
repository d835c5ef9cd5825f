"""A host process that configured no logging gets no line from gcmc-jobs on stdout, and
nothing unredacted anywhere (gcmc_jobs.logging.library)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SECRET = "tok3n-s3cret-0123456789"

HOST = textwrap.dedent(
    f"""
    import logging, sys
    import gcmc_jobs
    from gcmc_jobs.sending import queue_password_reset_email

    if sys.argv[1:] == ["--logging"]:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    gcmc_jobs.configure(gcmc_jobs.Settings(broker_url="stub://", email_url="memory://"))
    for n in range(3):
        queue_password_reset_email(
            f"user{{n}}@example.com",
            {{
                "tenant_name": "Acme",
                "user_name": "Sam",
                "reset_url": "https://portal.example/reset?token={SECRET}",
            }},
        )
    print("host output")
    """
)


def _run_host(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
    return subprocess.run(
        [sys.executable, "-c", HOST, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )


def test_a_host_without_logging_configured_gets_no_enqueued_line_on_stdout() -> None:
    # Given a host process that never configured structlog nor logging, when it sends
    # three password resets
    completed = _run_host()

    # Then its stdout is its own, and no event (INFO) reaches stderr either
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "host output\n"
    assert "enqueued" not in completed.stderr
    assert SECRET not in completed.stdout + completed.stderr


def test_a_host_that_configured_logging_gets_the_events_redacted_through_it() -> None:
    # Given a host that configured the standard library's logging at INFO
    completed = _run_host("--logging")

    # Then gcmc-jobs' events go through it (stderr here), one line per send, never on stdout
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "host output\n"
    enqueued = [line for line in completed.stderr.splitlines() if "event='enqueued'" in line]
    assert len(enqueued) == 3, completed.stderr
    assert all("gcmc_jobs.middleware.structured_logging" in line for line in enqueued)
    assert SECRET not in completed.stderr
