"""The runtime of a process: its settings, broker, database engine, email transport and
stores, owned by one :class:`Runtime` and closed with it.

This module holds the one piece of process state gcmc-jobs keeps: the runtime actors read
with :func:`current`. It sits below the actors in the layering (they import it) and knows
nothing of them; :func:`gcmc_jobs.configure` and :func:`gcmc_jobs.configured`
(:mod:`gcmc_jobs.bootstrap`, above the actors) build a runtime, bind the actors to its
broker and :func:`install` it.

Nothing else in the package caches a connection: the engine, the email transport (its
SMTP connection), the Redis clients of the stores and the stub stores of one process all
belong to its runtime. :meth:`Runtime.close` releases them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from gcmc_jobs.errors import NotConfiguredError

if TYPE_CHECKING:
    import dramatiq
    from sqlalchemy import Engine

    from gcmc_jobs.db.tables import Tables
    from gcmc_jobs.email.transports import Transport
    from gcmc_jobs.settings import Settings
    from gcmc_jobs.sms.transports import SmsTransport
    from gcmc_jobs.webhooks.client import WebhookClient

# The broker, the engine, the transport and the stores are imported when a Runtime builds
# them, not with this module: ops commands read the current runtime (`installed()`) without
# loading the middleware stack, SQLAlchemy or the email package.

__all__ = ["Runtime", "current", "install", "installed"]


class Runtime:
    """What a process runs on: built from ``settings``, read by actors through :func:`current`.

    Parameters:
      settings: the configuration.
      broker: a broker you built (it should carry :func:`gcmc_jobs.brokers.build_middleware`'s
        stack, on its own stores); by default one is built from ``settings`` on this
        runtime's :attr:`stores`, and closed with the runtime.
      engine: an engine to use (a test's, a host's), left open by :meth:`close`; by default
        one is built from ``settings.database_url`` on first use and disposed by
        :meth:`close`.

    Builds no connection: the engine, the transport and the Redis connections open on first
    use.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        broker: dramatiq.Broker | None = None,
        engine: Engine | None = None,
    ) -> None:
        # Imported on use: a Runtime connects to nothing, loads only what it is asked for.
        from gcmc_jobs.brokers import build_broker
        from gcmc_jobs.db.mapping import load_mapping
        from gcmc_jobs.db.tables import bind, build_tables
        from gcmc_jobs.middleware.stores.bundle import Stores

        self.settings = settings
        self._lock = threading.Lock()
        #: The tables of ``settings.schema_mapping`` (built once, shared by every runtime of
        #: the same mapping); bound to :attr:`engine`, so the services find them from a
        #: session (:func:`gcmc_jobs.db.tables.tables_of`).
        self.tables: Tables = build_tables(
            load_mapping(settings.schema_mapping),
            managed=settings.platform_tables == "managed",
        )
        self._engine = engine
        if engine is not None:
            bind(engine, self.tables)
        self._owns_engine = engine is None
        self._transport: Transport | None = None
        self._sms_transport: SmsTransport | None = None
        self._webhook_client: WebhookClient | None = None
        #: The dedup, rate-limit, dead-letter and pause stores (the dead-letter store writes
        #: with :attr:`engine`).
        self.stores = Stores.from_settings(settings, engine=lambda: self.engine)
        self._owns_broker = broker is None
        #: The broker the actors are bound to.
        self.broker = broker if broker is not None else build_broker(settings, self.stores)
        self._wire_mail_probe()
        self._closed = False

    def _wire_mail_probe(self) -> None:
        """Give the broker's mail circuit breaker this runtime's transport to probe (it
        opens no connection now: the transport is built on the first probe)."""
        # Imported on use: a Runtime connects to nothing, loads only what it is asked for.
        from gcmc_jobs.middleware.mail_circuit import MailCircuit

        for middleware in self.broker.middleware:
            if isinstance(middleware, MailCircuit) and middleware.probe is None:
                middleware.probe = lambda: self.email_transport.probe()

    def __repr__(self) -> str:
        return f"<Runtime broker={type(self.broker).__name__} namespace={self.settings.namespace}>"

    @property
    def engine(self) -> Engine:
        """The database engine, created on first use."""
        with self._lock:
            if self._engine is None:
                # Imported on use: a Runtime connects to nothing, loads only what it is asked for.
                from gcmc_jobs.db.engine import make_engine
                from gcmc_jobs.db.tables import bind

                self._engine = make_engine(
                    self.settings.database_url.get_secret_value(),
                    pool_size=self.settings.database_pool_size,
                    max_overflow=self.settings.database_max_overflow,
                    jit=self.settings.database_jit,
                )
                bind(self._engine, self.tables)
            return self._engine

    @property
    def email_transport(self) -> Transport:
        """The email transport of ``settings.email_url``, created on first use and reused
        (an SMTP connection serves many messages)."""
        with self._lock:
            if self._transport is None:
                # Imported on use: a Runtime connects to nothing, loads only what it is asked for.
                from gcmc_jobs.email.transports import from_url

                self._transport = from_url(
                    self.settings.email_url.get_secret_value(),
                    timeout_ms=self.settings.email_timeout_ms,
                    retry_attempts=self.settings.email_retry_attempts,
                    retry_max_wait_ms=self.settings.email_retry_max_wait_ms,
                )
            return self._transport

    @property
    def sms_transport(self) -> SmsTransport:
        """The SMS transport of ``settings.sms_url``, created on first use and reused
        (Twilio's pooled connections serve many messages)."""
        with self._lock:
            if self._sms_transport is None:
                # Imported on use: a Runtime connects to nothing, loads only what it is asked for.
                from gcmc_jobs.sms.transports import from_settings

                self._sms_transport = from_settings(self.settings)
            return self._sms_transport

    @property
    def webhook_client(self) -> WebhookClient:
        """The process's one pooled webhook HTTP client (``GCMC_JOBS_WEBHOOK_*``), created
        on first use, so each worker process gets its own pool after the fork."""
        with self._lock:
            if self._webhook_client is None:
                # Imported on use: a Runtime connects to nothing, loads only what it is asked for.
                from gcmc_jobs.webhooks.client import WebhookClient

                s = self.settings
                self._webhook_client = WebhookClient(
                    allow_private=s.webhook_allow_private,
                    connect_timeout_ms=s.webhook_connect_timeout_ms,
                    read_timeout_ms=s.webhook_read_timeout_ms,
                    max_response_bytes=s.webhook_max_response_bytes,
                    pool_maxsize=s.webhook_pool_maxsize,
                )
            return self._webhook_client

    def close(self) -> None:
        """Close what the runtime owns: the broker it built, the email and SMS transports,
        the stores' connections, the engine it built. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            transport, self._transport = self._transport, None
            sms_transport, self._sms_transport = self._sms_transport, None
            webhook_client, self._webhook_client = self._webhook_client, None
            engine = self._engine if self._owns_engine else None
            self._engine = None if self._owns_engine else self._engine
        if self._owns_broker:
            self.broker.close()
        if transport is not None:
            transport.close()
        if sms_transport is not None:
            sms_transport.close()
        if webhook_client is not None:
            webhook_client.close()
        self.stores.close()
        if engine is not None:
            engine.dispose()


_current: Runtime | None = None


def current() -> Runtime:
    """The runtime :func:`gcmc_jobs.configure` installed; raises :class:`NotConfiguredError`
    before."""
    if _current is None:
        raise NotConfiguredError(
            "gcmc_jobs is not configured: call gcmc_jobs.configure() at start-up."
        )
    return _current


def installed() -> Runtime | None:
    """The installed runtime, or None before :func:`gcmc_jobs.configure`."""
    return _current


def install(runtime: Runtime | None) -> Runtime | None:
    """Make ``runtime`` the current one (None: none) and return the one it replaces.

    :func:`gcmc_jobs.configure` and :func:`gcmc_jobs.configured` call it after binding the
    actors to the runtime's broker; a host calls those instead.
    """
    global _current
    previous, _current = _current, runtime
    return previous
