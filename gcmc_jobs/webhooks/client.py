"""The HTTP client that delivers webhooks: pooled, bounded, and guarded at connect time.

It speaks the small part of HTTP/1.1 a webhook needs (one ``POST`` with a JSON body, one
answer), over sockets it connects itself:

- **The destination check runs at connect time, on the resolved address**: the host is
  resolved once, any address that is private, loopback, link-local, multicast, reserved or
  unspecified is refused (unless ``allow_private``), and the socket connects to exactly an
  address that passed, so neither a name that resolves to 127.0.0.1 nor a DNS answer that
  changes between a check and the connection (rebinding) reaches an internal service.
- **Pooled**: one :class:`WebhookClient` per worker process (the runtime creates it on first
  use) keeps up to ``pool_maxsize`` idle kept-alive connections per destination (scheme,
  host, port; at most 100 destinations, the least recently used dropped), TLS sessions
  included. A connection is reused only after an answer read to its end; one the server
  closed meanwhile (readable while idle) is dropped before use.
- **Bounded**: a connect timeout (TLS handshake included) and a timeout on each read and
  write; at most ``max_response_bytes`` of the answer's body read (a longer one closes the
  connection instead of draining it); at most 64 KiB of status line and headers.
- Redirects are **never followed** (a 3xx is a failed attempt); nothing is retried (the
  delivery schedule retries).

Why not urllib3 (the client until issue 14's benchmark) or httpx: the work per request.
urllib3 goes through ``http.client`` (the ``email`` package parses each answer's headers),
builds a pool key per request and sends the headers and the body in two writes: about
200 µs of a worker's CPU per delivery on a kept-alive connection, when the request itself
(one write, one read) costs some 20 µs here. With that overhead, a pooled connection saved
barely half the time of a new one over plain http. The request here is built as one byte
string and sent in one write; the answer is parsed from the bytes read (status line,
``content-length``, ``transfer-encoding: chunked``, ``connection``, 1xx interim answers
skipped, a body up to the connection's end when neither length is given).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gcmc_jobs.errors import DestinationRefused

__all__ = ["AddressGuard", "Response", "WebhookClient", "is_public"]

#: getaddrinfo's signature: what the guard resolves hosts with (injectable in tests).
Resolver = Callable[..., list[tuple[Any, ...]]]

#: How many bytes of a response body an attempt's record keeps.
KEPT_BODY_BYTES = 1024

USER_AGENT = "gcmc-jobs-webhooks/1"

#: Destinations whose idle connections are kept (the least recently used beyond are closed).
MAX_DESTINATIONS = 100

#: The most bytes of status line and headers read from one answer.
MAX_HEADER_BYTES = 65_536

_READ_SIZE = 65_536
# What may not appear in a request target or a header (request splitting).
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


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


class ConnectTimeout(OSError):
    """No connection (TCP, then TLS) within the connect timeout."""


class ReadTimeout(OSError):
    """The destination sent nothing (or took no bytes) within the read timeout."""


class RemoteDisconnected(OSError):
    """The destination closed the connection before its answer was complete."""


class ProtocolError(OSError):
    """The answer is not HTTP/1.x as this client reads it."""


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    head: bytes  # "POST <target> HTTP/1.1\r\nhost: <host>\r\n"

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


class _Connection:
    """One socket and the bytes read from it past the last answer."""

    __slots__ = ("buffer", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def dropped(self) -> bool:
        """Whether the idle connection became readable (closed by the server, or bytes
        nobody asked for): either way it cannot carry a request."""
        if self.buffer:
            return True
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        with contextlib.suppress(OSError):  # closing a broken socket
            self.sock.close()

    def fill(self) -> bool:
        """Read what is there into the buffer; False at the end of the stream."""
        try:
            data = self.sock.recv(_READ_SIZE)
        except TimeoutError as exc:
            raise ReadTimeout(f"read timed out after {self.sock.gettimeout()} s") from exc
        if not data:
            return False
        self.buffer += data
        return True

    def line(self, limit: int) -> bytes:
        """The next CRLF-ended line, without its CRLF."""
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > limit:
                raise ProtocolError("line too long")
            if not self.fill():
                raise RemoteDisconnected("connection closed before the answer was complete")
        line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
        return line

    def take(self, count: int) -> bytes:
        """Exactly ``count`` bytes."""
        while len(self.buffer) < count:
            if not self.fill():
                raise RemoteDisconnected("connection closed before the answer was complete")
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data


def _read_answer(connection: _Connection, cap: int) -> tuple[int, bytes, bool]:
    """The status, the first ``cap`` bytes of the body, and whether the connection may
    carry another request, of the answer waiting on ``connection``."""
    while True:
        while (end := connection.buffer.find(b"\r\n\r\n")) < 0:
            if len(connection.buffer) > MAX_HEADER_BYTES:
                raise ProtocolError(f"headers longer than {MAX_HEADER_BYTES} bytes")
            if not connection.fill():
                raise RemoteDisconnected("connection closed without an answer")
        head = connection.buffer[:end].decode("latin-1")
        connection.buffer = connection.buffer[end + 4 :]
        status_line, _, header_text = head.partition("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        status = int(code)
        if 100 <= status < 200 and status != 101:
            continue  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        break
    headers: dict[str, str] = {}
    for line in header_text.split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    tokens = {t.strip() for t in headers.get("connection", "").lower().split(",")}
    reusable = ("close" not in tokens) if version == "HTTP/1.1" else ("keep-alive" in tokens)
    if status in (101, 204, 304):
        return status, b"", reusable and status != 101
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, complete = _read_chunked(connection, cap)
        return status, body, reusable and complete
    if "content-length" in headers:
        try:
            length = int(headers["content-length"].split(",")[0])
        except ValueError as exc:
            raise ProtocolError("invalid content-length") from exc
        if length < 0:
            raise ProtocolError("invalid content-length")
        if length > cap:
            return status, connection.take(cap), False
        return status, connection.take(length), reusable
    # Neither: the body ends with the connection.
    while len(connection.buffer) <= cap and connection.fill():
        pass
    return status, connection.buffer[:cap], False


def _read_chunked(connection: _Connection, cap: int) -> tuple[bytes, bool]:
    """A chunked body's first ``cap`` bytes, and whether it was read to its end."""
    parts: list[bytes] = []
    kept = 0
    while True:
        size_text = connection.line(1024).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise ProtocolError("invalid chunk size") from exc
        if size == 0:
            while connection.line(MAX_HEADER_BYTES):  # trailers, up to the empty line
                pass
            return b"".join(parts), True
        if kept + size > cap:
            parts.append(connection.take(cap - kept))
            return b"".join(parts), False
        parts.append(connection.take(size))
        kept += size
        if connection.take(2) != b"\r\n":
            raise ProtocolError("chunk not followed by CRLF")


class WebhookClient:
    """POSTs signed webhook requests (module docstring). Thread-safe: a connection serves
    one request at a time; the idle ones wait in per-destination stacks under a lock.

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
        self.pool_maxsize = pool_maxsize
        self._guard = AddressGuard(allow_private=allow_private, resolver=resolver)
        self._connect_timeout = connect_timeout_ms / 1000
        self._read_timeout = read_timeout_ms / 1000
        self._ca_certs = ca_certs
        self._tls: ssl.SSLContext | None = None
        self._idle: OrderedDict[tuple[str, str, int], list[_Connection]] = OrderedDict()
        self._targets: dict[str, _Target] = {}
        self._lock = threading.Lock()
        self._fixed = f"content-type: application/json\r\nuser-agent: {USER_AGENT}\r\n" + (
            "" if pooled else "connection: close\r\n"
        )

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """POST ``body`` (JSON) to ``url``; never raises for a network or HTTP failure: the
        :class:`Response` says what happened."""
        started = time.perf_counter()
        connection: _Connection | None = None
        try:
            target = self._target(url)
            request = self._request(target, body, headers)
            connection = self._checkout(target)
            try:
                connection.sock.sendall(request)
            except TimeoutError as exc:
                raise ReadTimeout(f"write timed out after {self._read_timeout} s") from exc
            status, data, reusable = _read_answer(connection, self.max_response_bytes)
        except DestinationRefused as exc:
            return Response(None, b"", _ms(started), f"DestinationRefused: {exc}")
        except Exception as exc:
            if connection is not None:
                connection.close()
            return Response(None, b"", _ms(started), f"{type(exc).__name__}: {exc}")
        if reusable and self.pooled and not connection.buffer:
            self._checkin(target, connection)
        else:
            connection.close()
        return Response(status, data, _ms(started))

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            idle = [c for stack in self._idle.values() for c in stack]
            self._idle.clear()
        for connection in idle:
            connection.close()

    # -- the parts of one request ---------------------------------------------------------

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is not None:
            return target
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url}")
        host = parts.hostname
        if not host:
            raise ValueError(f"no host in {url}")
        port = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if _UNSAFE.search(path):
            raise ValueError(f"unsafe characters in the URL's path: {url}")
        shown = f"[{host}]" if ":" in host else host
        if port != (443 if scheme == "https" else 80):
            shown = f"{shown}:{port}"
        head = f"POST {path} HTTP/1.1\r\nhost: {shown}\r\n".encode("ascii")
        target = _Target(scheme, host, port, head)
        if len(self._targets) < 10_000:  # endpoints are few; a bound all the same
            self._targets[url] = target
        return target

    def _request(self, target: _Target, body: bytes, headers: dict[str, str]) -> bytes:
        lines = [self._fixed]
        for name, value in headers.items():
            if _UNSAFE.search(name) or _UNSAFE_VALUE.search(value):
                raise ValueError(f"unsafe characters in header {name!r}")
            lines.append(f"{name}: {value}\r\n")
        lines.append(f"content-length: {len(body)}\r\n\r\n")
        return target.head + "".join(lines).encode("latin-1") + body

    def _checkout(self, target: _Target) -> _Connection:
        if self.pooled:
            while True:
                with self._lock:
                    stack = self._idle.get(target.key)
                    connection = stack.pop() if stack else None
                if connection is None:
                    break
                if not connection.dropped():
                    return connection
                connection.close()
        return self._connect(target)

    def _checkin(self, target: _Target, connection: _Connection) -> None:
        closing: list[_Connection] = []
        with self._lock:
            stack = self._idle.get(target.key)
            if stack is None:
                stack = self._idle[target.key] = []
                while len(self._idle) > MAX_DESTINATIONS:
                    closing.extend(self._idle.popitem(last=False)[1])
            else:
                self._idle.move_to_end(target.key)
            if len(stack) < self.pool_maxsize:
                stack.append(connection)
            else:
                closing.append(connection)
        for extra in closing:
            extra.close()

    def _connect(self, target: _Target) -> _Connection:
        last: OSError | None = None
        for family, socktype, proto, _, sockaddr in self._guard.addresses(target.host, target.port):
            sock = socket.socket(family, socktype, proto)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(self._connect_timeout)
                sock.connect(sockaddr)
                if target.scheme == "https":
                    sock = self._tls_context().wrap_socket(sock, server_hostname=target.host)
                sock.settimeout(self._read_timeout)
            except TimeoutError as exc:
                sock.close()
                last = ConnectTimeout(f"{target.host}:{target.port}: connect timed out")
                last.__cause__ = exc
                continue
            except OSError as exc:
                sock.close()
                last = exc
                continue
            return _Connection(sock)
        if isinstance(last, ConnectTimeout | ssl.SSLError):
            raise last
        raise ConnectionError(f"failed to establish a new connection: {last}")

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context(cafile=self._ca_certs)
            context.set_alpn_protocols(["http/1.1"])
            self._tls = context
        return self._tls


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
