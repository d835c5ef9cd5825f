"""The HTTP client that delivers webhooks: pooled, bounded, and guarded at connect time.

Why urllib3 (not httpx): the destination check must run on the address the socket
actually connects to, after DNS resolution, or a hostname that resolves to 127.0.0.1 (or
that changes its answer between a check and the connection: DNS rebinding) reaches
internal services. urllib3's connection class has one documented-by-source hook for that,
``HTTPConnection._new_conn``; here it resolves the host once, refuses any address that is
private, loopback, link-local, multicast, reserved or unspecified (unless
``allow_private``), and connects to exactly the address it checked. httpx would need a
custom ``httpcore`` network backend for the same, and brings an async stack the workers do
not use. urllib3 is already installed with every Python HTTP stack and is small.

One :class:`WebhookClient` per worker process (the runtime creates it on first use): its
``PoolManager`` keeps up to ``pool_maxsize`` connections alive per destination host, so a
burst of deliveries to one endpoint reuses its connections (TLS handshakes included).

Every request: ``POST``, redirects **not** followed (a 3xx is a failed attempt), no urllib3
retries (the delivery schedule retries), a connect timeout and a per-read timeout, and at
most ``max_response_bytes`` of the response body read; a longer body closes the
connection instead of draining it.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from gcmc_jobs.errors import DestinationRefused

__all__ = ["AddressGuard", "Response", "WebhookClient", "is_public"]

#: getaddrinfo's signature: what the guard resolves hosts with (injectable in tests).
Resolver = Callable[..., list[tuple[Any, ...]]]

#: How many bytes of a response body an attempt's record keeps.
KEPT_BODY_BYTES = 1024

USER_AGENT = "gcmc-jobs-webhooks/1"


def is_public(address: str) -> bool:
    """Whether ``address`` (an IP, v4 or v6) is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class AddressGuard:
    """Resolves a host and keeps the addresses a delivery may connect to."""

    allow_private: bool = False
    resolver: Resolver = socket.getaddrinfo

    def addresses(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """``getaddrinfo`` results for ``host:port`` that pass; raises
        :class:`DestinationRefused` when none does (naming the refused addresses)."""
        found = self.resolver(host, port, 0, socket.SOCK_STREAM)
        allowed = [info for info in found if self.allow_private or is_public(info[4][0])]
        if not allowed:
            refused = sorted({str(info[4][0]) for info in found})
            raise DestinationRefused(
                f"{host} resolves to {', '.join(refused)}: not a public address "
                "(set GCMC_JOBS_WEBHOOK_ALLOW_PRIVATE=true to allow private destinations)"
            )
        return allowed


class _GuardedConnection(HTTPConnection):
    guard: AddressGuard

    def _new_conn(self) -> socket.socket:
        last: OSError | None = None
        for family, socktype, proto, _, sockaddr in self.guard.addresses(
            self._dns_host, self.port or 80
        ):
            sock = socket.socket(family, socktype, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if isinstance(self.timeout, int | float):
                    sock.settimeout(self.timeout)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}")


def _pool_classes(guard: AddressGuard) -> dict[str, type[HTTPConnectionPool]]:
    http_connection = type("GuardedHTTPConnection", (_GuardedConnection,), {"guard": guard})
    https_connection = type(
        "GuardedHTTPSConnection", (_GuardedConnection, HTTPSConnection), {"guard": guard}
    )
    http_pool = type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_connection})
    https_pool = type(
        "GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_connection}
    )
    return {"http": http_pool, "https": https_pool}


@dataclass(frozen=True)
class Response:
    """The outcome of one attempt: ``status`` None when no response came (``error`` says
    why); ``body`` its first bytes (up to the client's cap)."""

    status: int | None
    body: bytes
    latency_ms: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx response: the endpoint accepted the event."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def kept_body(self) -> str:
        """The first :data:`KEPT_BODY_BYTES` of the body, decoded leniently."""
        return self.body[:KEPT_BODY_BYTES].decode("utf-8", "replace")


class WebhookClient:
    """POSTs signed webhook requests (module docstring). Thread-safe (urllib3's pools are).

    ``pooled`` False sends ``Connection: close``: a new connection per request (the
    benchmark's baseline). ``resolver`` replaces ``socket.getaddrinfo`` (tests).
    ``ca_certs``: a PEM file of the CAs to trust for https endpoints instead of the
    system's (a private CA; the benchmark's self-signed receiver).
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        connect_timeout_ms: int = 5_000,
        read_timeout_ms: int = 15_000,
        max_response_bytes: int = 65_536,
        pool_maxsize: int = 4,
        pooled: bool = True,
        resolver: Resolver = socket.getaddrinfo,
        ca_certs: str | None = None,
    ) -> None:
        self.max_response_bytes = max_response_bytes
        self.pooled = pooled
        self._timeout = urllib3.Timeout(
            connect=connect_timeout_ms / 1000, read=read_timeout_ms / 1000
        )
        self._manager = urllib3.PoolManager(
            num_pools=100, maxsize=pool_maxsize, block=False, retries=False, ca_certs=ca_certs
        )
        self._manager.pool_classes_by_scheme = _pool_classes(
            AddressGuard(allow_private=allow_private, resolver=resolver)
        )

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """POST ``body`` (JSON) to ``url``; never raises for a network or HTTP failure: the
        :class:`Response` says what happened."""
        sent = {"content-type": "application/json", "user-agent": USER_AGENT, **headers}
        if not self.pooled:
            sent["connection"] = "close"
        started = time.perf_counter()
        try:
            response = self._manager.request(
                "POST",
                url,
                body=body,
                headers=sent,
                redirect=False,
                retries=False,
                preload_content=False,
                timeout=self._timeout,
            )
            try:
                data = response.read(self.max_response_bytes) if self.max_response_bytes else b""
                complete = not response.read(1) if len(data) >= self.max_response_bytes else True
            except Exception:
                complete = False
                raise
            finally:
                if not complete or not self.pooled:
                    # Do not drain an unbounded body: drop the connection instead (and never
                    # keep one when unpooled).
                    response.close()
                response.release_conn()
        except DestinationRefused as exc:
            return Response(None, b"", _ms(started), f"DestinationRefused: {exc}")
        except Exception as exc:
            return Response(None, b"", _ms(started), f"{type(exc).__name__}: {exc}")
        return Response(response.status, data, _ms(started))

    def close(self) -> None:
        """Close every pooled connection."""
        self._manager.clear()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
