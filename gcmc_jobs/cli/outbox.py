"""``gcmc-jobs outbox relay``: move the messages hosts committed to the outbox to the broker."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from types import FrameType

import typer

from gcmc_jobs.cli._app import app, configure_command_logging, console, fail, settings

__all__ = ["relay_command"]

outbox_app = typer.Typer(help="The transactional outbox (gcmc_jobs.outbox).")
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("relay")
def relay_command(
    once: bool = typer.Option(
        False, "--once", help="Relay what is committed now, print how many, and exit."
    ),
) -> None:
    """Relay committed outbox rows to the broker, in batches, until SIGTERM or Ctrl-C.

    Workers already do this when GCMC_JOBS_OUTBOX_RELAY is on (the default); any number of
    relays may run at once (each takes rows the others do not hold).
    """
    from gcmc_jobs.bootstrap import configured
    from gcmc_jobs.middleware.outbox_relay import OutboxRelay
    from gcmc_jobs.ops.health.connectivity import check_broker
    from gcmc_jobs.ops.redis_client import redis_client

    current = settings()
    if current.broker_kind == "stub":
        fail("the stub broker lives inside one process: set GCMC_JOBS_BROKER_URL to relay to it")
    configure_command_logging(current)
    with configured(current) as runtime:
        (relay,) = [m for m in runtime.broker.middleware if isinstance(m, OutboxRelay)]
        # The broker, the stores' Redis and the database, checked once before the loop: an
        # unreachable one fails the command at once, as one line (the loop would log the
        # failure and retry for ever).
        check_broker(current, None, datetime.now(UTC))
        if current.store_redis_url is not None:
            client = redis_client(current.store_redis_url, timeout_ms=current.health_timeout_ms)
            try:
                client.ping()
            finally:
                client.close()
        relayed = relay.drain(runtime.broker)
        if once:
            console.print(f"relayed {relayed} message(s)")
            return
        stop = threading.Event()

        def _stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            console.print(f"relaying the outbox every {relay.poll_ms} ms at most; Ctrl-C stops")
            relay.run(runtime.broker, stop)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
