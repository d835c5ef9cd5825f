"""The mail server's circuit breaker, read and reset by operators (health, the admin API and
dashboard, ``/metrics``).

The state is the one every worker's :class:`~gcmc_jobs.middleware.mail_circuit.MailCircuit`
shares: a Redis hash on ``settings.store_redis_url``, or, without Redis, the in-process stub
of this process's runtime (the embedded demo).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gcmc_jobs.middleware.stores.mail_circuit import (
    CircuitState,
    CircuitStore,
    RedisCircuitStore,
    StubCircuitStore,
)
from gcmc_jobs.ops.redis_client import redis_client
from gcmc_jobs.runtime import installed
from gcmc_jobs.settings import Settings

__all__ = ["circuit_store_for", "mail_circuit_state", "reset_mail_circuit"]


def circuit_store_for(settings: Settings) -> CircuitStore:
    """A Redis store on ``settings.store_redis_url`` (every call bounded by
    ``settings.health_timeout_ms``); else the configured runtime's store (same namespace);
    else a new, closed stub."""
    url = settings.store_redis_url
    if url is not None:
        client = redis_client(url, timeout_ms=settings.health_timeout_ms)
        return RedisCircuitStore(client, namespace=settings.namespace)
    runtime = installed()
    if runtime is not None and runtime.settings.namespace == settings.namespace:
        return runtime.stores.mail_circuit
    return StubCircuitStore()


@contextmanager
def _using(settings: Settings, store: CircuitStore | None) -> Iterator[CircuitStore]:
    if store is not None:
        yield store
        return
    made = circuit_store_for(settings)
    try:
        yield made
    finally:
        if isinstance(made, RedisCircuitStore):
            made.client.close()


def mail_circuit_state(settings: Settings, *, store: CircuitStore | None = None) -> CircuitState:
    """The breaker's state as every worker sees it (``store`` defaults to
    :func:`circuit_store_for`)."""
    with _using(settings, store) as used:
        return used.state()


def reset_mail_circuit(settings: Settings, *, store: CircuitStore | None = None) -> CircuitState:
    """Close the breaker by hand and forget its failures: held email runs again within the
    workers' ``mail_breaker_refresh_ms`` and hold delay. For when the operator knows better
    (the server is back, a probe has not come yet); an open breaker also closes by itself."""
    with _using(settings, store) as used:
        return used.reset()
