"""A real local HTTP server that receives webhooks, for tests and benchmarks.

``WebhookReceiver`` listens on 127.0.0.1 on a free port (port 0) with HTTP/1.1 keep-alive,
records every request (path, headers, body) and every accepted connection, and answers
each request by a *behaviour*: the default one (:attr:`WebhookReceiver.behaviour`), or the
next of those queued by :meth:`script`:

- ``"ok"``: ``200`` with a short body;
- ``"error"``: ``500``;
- ``"hang"``: no answer until :meth:`release` (or the receiver stops);
- ``"redirect"``: ``302`` to ``/elsewhere`` (a client that follows it shows up there);
- ``"close"``: the connection is closed without any answer;
- ``"big"``: ``200`` with a 1 MiB body.

::

    with WebhookReceiver() as receiver:
        receiver.script("error", "ok")
        ...post to receiver.url("/hooks")...
        assert [r.path for r in receiver.requests] == ["/hooks", "/hooks"]
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["ReceivedRequest", "WebhookReceiver"]

BIG_BODY = b"x" * (1 << 20)


@dataclass(frozen=True)
class ReceivedRequest:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered writes: an answer's headers and body leave in one write when the handler
    # flushes after each request (as servers do), not in one write per part.
    wbufsize = 65_536
    server: _Server

    def setup(self) -> None:
        super().setup()
        # An answer larger than the write buffer (``big``) still leaves in several writes:
        # without this, Nagle's algorithm and the client's delayed ACK add ~40 ms to them.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()
        with self.server.receiver._lock:
            self.server.receiver.connections += 1

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        request = ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        behaviour = receiver._record(request)
        if behaviour == "close":
            self.close_connection = True
            return
        if behaviour == "hang":
            receiver._released.wait()
            self.close_connection = True
            return
        status, headers, payload = {
            "ok": (200, {}, b"ok"),
            "error": (500, {}, b"receiver error"),
            "redirect": (302, {"location": "/elsewhere"}, b""),
            "big": (200, {}, BIG_BODY),
        }[behaviour]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        if self.close_connection:  # the client asked for it (Connection: close)
            self.send_header("connection", "close")
        self.end_headers()
        try:
            self.wfile.write(payload)
        except OSError:  # the client stopped reading (a capped body)
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        super().__init__(("127.0.0.1", 0), _Handler)
        if receiver.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*receiver.tls)
            # The handshake happens in each connection's thread, not in the accept loop.
            self.socket = context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops its connection (a timeout, a capped body) is expected here.
        return


class WebhookReceiver:
    """See the module docstring. ``behaviour`` is the default answer (``"ok"``); ``tls``
    (a certificate and its key, PEM files) serves https instead of http."""

    def __init__(self, behaviour: str = "ok", *, tls: tuple[str, str] | None = None) -> None:
        self.behaviour = behaviour
        #: (certificate file, key file): serve https with them.
        self.tls = tls
        self.requests: list[ReceivedRequest] = []
        #: Connections accepted so far (a pooled client makes few).
        self.connections = 0
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (started)."""
        assert self._server is not None, "start() the receiver first"
        return int(self._server.server_address[1])

    def url(self, path: str = "/hooks") -> str:
        """``http://127.0.0.1:<port><path>`` (``https`` with ``tls``)."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def script(self, *behaviours: str) -> None:
        """Answer the next requests with ``behaviours``, in order, then the default."""
        with self._lock:
            self._script.extend(behaviours)

    def release(self) -> None:
        """Let every hanging request end (without an answer)."""
        self._released.set()

    def _record(self, request: ReceivedRequest) -> str:
        with self._lock:
            self.requests.append(request)
            return self._script.popleft() if self._script else self.behaviour

    def start(self) -> WebhookReceiver:
        """Start listening (a daemon thread)."""
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and release hanging requests."""
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
