"""A real SMTP server for tests: :class:`SmtpSink` (aiosmtpd on a loopback port).

It records what it accepts and can be told how to misbehave, the ways a mail server does::

    with SmtpSink() as sink:                     # or the ``smtp_server`` fixture
        settings = Settings(email_url=sink.url, ...)
        sink.script("421 4.3.0 try later")       # the next message is refused, once
        sink.reject("nobody@example.com")        # 550 for this recipient, for good
        sink.reject("gone@example.com", at="rcpt")  # refused at RCPT TO, as real servers do
        sink.hold()                              # accept, but hold the 250 until release()
        ...
        sink.per_dedup_key()                     # Counter: deliveries per logical email

:meth:`SmtpSink.stop` closes the listening socket (clients get "connection refused", as
when a mail server is down) and :meth:`SmtpSink.start` listens again on the same port.
:meth:`SmtpSink.go_down` is an outage the sink can count: the SMTP server stops, and each
connection to the port is answered ``421`` and closed (:attr:`SmtpSink.refused_connections`);
:attr:`SmtpSink.connections` counts the sessions the server had while up.
With ``credentials=(login, password)`` it requires SMTP AUTH (over plain TCP: loopback only);
with ``smtputf8=True`` it offers SMTPUTF8 (RFC 6531: non-ASCII addresses), which it does
not by default, like many servers.

aiosmtpd is an optional dependency: ``pip install gcmc-jobs[testing]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections import Counter
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from functools import cached_property
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from gcmc_jobs.testing.ports import free_port

__all__ = ["DOWN_REPLY", "Delivery", "SmtpSink"]

#: What a recipient of :meth:`SmtpSink.reject` is answered.
REJECT_REPLY = "550 5.1.1 mailbox unavailable"
ACCEPT_REPLY = "250 2.0.0 Ok: queued"
#: The greeting of a sink that is down (:meth:`SmtpSink.go_down`), before it hangs up.
DOWN_REPLY = "421 4.3.2 Service not available"

_HEADERS = BytesHeaderParser(policy=policy.compat32)


def _decoded(value: str) -> str:
    """A raw header value unfolded and RFC 2047-decoded (a long value without spaces, such
    as a dedup key, is folded into encoded words by ``email.policy.SMTP``)."""
    unfolded = str(value).replace("\r\n", "").replace("\n", "")
    return str(make_header(decode_header(unfolded))).strip()


class Delivery:
    """One message the sink accepted: its envelope, a few headers, the parsed message."""

    def __init__(
        self,
        content: bytes,
        *,
        mail_from: str,
        recipients: list[str],
        peer: tuple[str, int],
        received_at: float,
        mail_options: tuple[str, ...] = (),
    ) -> None:
        headers = _HEADERS.parsebytes(content, headersonly=True)
        #: The raw message, as received.
        self.content = content
        self.mail_from = mail_from
        #: ``RCPT TO`` addresses, as the client wrote them.
        self.recipients = tuple(recipients)
        #: The ``MAIL FROM`` parameters (``"SMTPUTF8"`` for an SMTPUTF8 transaction).
        self.mail_options = mail_options
        #: The client's ``(host, port)``: one per connection.
        self.peer = peer
        self.message_id = _decoded(headers.get("Message-ID", ""))
        #: The ``X-GCMC-Dedup-Key`` header (unfolded, decoded): which logical email this is.
        self.dedup_key = _decoded(headers.get("X-GCMC-Dedup-Key", ""))
        self.subject = _decoded(headers.get("Subject", ""))
        #: When the sink accepted it (``time.time()``).
        self.received_at = received_at

    @cached_property
    def message(self) -> EmailMessage:
        """The message parsed (``email.policy.default``), on first use."""
        message: EmailMessage = message_from_bytes(self.content, policy=policy.default)
        return message

    def __repr__(self) -> str:
        return f"Delivery(message_id={self.message_id!r}, recipients={self.recipients!r})"


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that records what it accepts.

    ``url`` is the ``GCMC_JOBS_EMAIL_URL`` that reaches it; the port is chosen when the sink
    is made, so the URL is known before :meth:`start` and stays the same across restarts.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: tuple[str, str] | None = None,
        smtputf8: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.credentials = credentials
        #: Whether the server offers SMTPUTF8 in its EHLO reply.
        self.smtputf8 = smtputf8
        #: Logins that authenticated (with ``credentials``).
        self.logins: list[str] = []
        #: Every reply that refused a message (scripted or rejected), in order.
        self.refused: list[str] = []
        #: Set while the ``250`` of a message is being held (see :meth:`hold`).
        self.holding = threading.Event()
        self._deliveries: list[Delivery] = []
        self._script: list[str] = []
        self._rejected: set[str] = set()
        self._rejected_rcpt: set[str] = set()
        self._gate: threading.Event | None = None
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self._down: _DownListener | None = None
        self._connections = 0
        self._refused_total = 0
        self._counting = False

    @property
    def connections(self) -> int:
        """SMTP sessions (TCP connections) the server accepted while up."""
        with self._lock:
            return self._connections

    @property
    def refused_connections(self) -> int:
        """Connections answered ``421`` and closed while down (:meth:`go_down`), in all."""
        with self._lock:
            return self._refused_total

    def _connected(self) -> None:
        with self._lock:
            if self._counting:
                self._connections += 1

    def _refused_one(self) -> None:
        with self._lock:
            self._refused_total += 1

    # -- Lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``smtp://[login:password@]127.0.0.1:<port>?starttls=off``."""
        userinfo = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"smtp://{userinfo}{self.host}:{self.port}?starttls=off"

    def start(self) -> SmtpSink:
        """Listen (again) on the sink's port."""
        if self._controller is not None:
            return self
        options: dict[str, Any] = {"enable_SMTPUTF8": self.smtputf8}
        if self.credentials is not None:  # AUTH over plain TCP: loopback only, for tests
            options |= {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self._stop_down()
        controller = _CountingController(
            self, _Handler(self), hostname=self.host, port=self.port, **options
        )
        controller.start()  # connects once to itself: not counted (counting starts below)
        with self._lock:
            self._counting = True
        self._controller = controller
        return self

    def go_down(self) -> None:
        """An outage the sink sees: stop the SMTP server, then answer every connection to
        the port with :data:`DOWN_REPLY` and close it, counting them
        (:attr:`refused_connections`). :meth:`start` ends it."""
        self.stop()
        self._down = _DownListener(self)

    def _stop_down(self) -> None:
        down, self._down = self._down, None
        if down is not None:
            down.close()

    def stop(self) -> None:
        """Stop listening (a held reply is released first). Recorded messages are kept."""
        self.release()
        self._stop_down()
        with self._lock:
            self._counting = False
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- Behaviour -----------------------------------------------------------------------------

    def script(self, *replies: str) -> None:
        """Answer the next DATA commands with ``replies``, in order (``"421 4.3.0 try
        later"``, ``"550 5.1.1 no such user"``): each refuses one message; then messages
        are accepted again."""
        with self._lock:
            self._script.extend(replies)

    def reject(self, *addresses: str, at: Literal["data", "rcpt"] = "data") -> None:
        """Refuse for good (``550 5.1.1``) every message to one of ``addresses`` (any case),
        like a mailbox that does not exist: after DATA (the default), or at ``RCPT TO``
        (``at="rcpt"``, where real servers refuse an unknown mailbox)."""
        with self._lock:
            target = self._rejected if at == "data" else self._rejected_rcpt
            target.update(address.lower() for address in addresses)

    def hold(self) -> None:
        """Accept (and record) each message from now on, but hold its ``250`` reply until
        :meth:`release`: the instant where the server has a message and the client does not
        know it yet. :attr:`holding` is set while a reply waits."""
        with self._lock:
            self._gate = threading.Event()

    def release(self) -> None:
        """Send the held replies, and stop holding."""
        with self._lock:
            gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    # -- What it received ------------------------------------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        """The accepted messages, in order."""
        with self._lock:
            return list(self._deliveries)

    @property
    def messages(self) -> list[EmailMessage]:
        """The accepted messages, parsed."""
        return [delivery.message for delivery in self.deliveries]

    @property
    def envelopes(self) -> list[tuple[str, list[str]]]:
        """``(MAIL FROM, [RCPT TO, ...])`` of each accepted message."""
        return [(d.mail_from, list(d.recipients)) for d in self.deliveries]

    @property
    def peers(self) -> list[tuple[str, int]]:
        """The client ``(host, port)`` of each accepted message: ``len(set(peers))`` counts
        connections."""
        return [d.peer for d in self.deliveries]

    def count(self) -> int:
        """How many messages were accepted."""
        with self._lock:
            return len(self._deliveries)

    def per_dedup_key(self) -> Counter[str]:
        """Deliveries per logical email (the ``X-GCMC-Dedup-Key`` header)."""
        return Counter(d.dedup_key for d in self.deliveries)

    def per_message_id(self) -> Counter[str]:
        """Deliveries per ``Message-ID``."""
        return Counter(d.message_id for d in self.deliveries)

    def per_recipient(self) -> Counter[str]:
        """Deliveries per recipient address (lower-cased)."""
        return Counter(r.lower() for d in self.deliveries for r in d.recipients)

    # -- The server side ---------------------------------------------------------------------------

    def _receive(self, envelope: Envelope, session: Session) -> tuple[str, threading.Event | None]:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        recipients = [str(r) for r in envelope.rcpt_tos]
        with self._lock:
            if self._script:
                reply = self._script.pop(0)
                self.refused.append(reply)
                return reply, None
            if any(r.lower() in self._rejected for r in recipients):
                self.refused.append(REJECT_REPLY)
                return REJECT_REPLY, None
            peer: Any = session.peer  # (host, port); aiosmtpd's annotation says str
            self._deliveries.append(
                Delivery(
                    content,
                    mail_from=str(envelope.mail_from),
                    recipients=recipients,
                    peer=(str(peer[0]), int(peer[1])),
                    received_at=time.time(),
                    mail_options=tuple(str(option) for option in envelope.mail_options),
                )
            )
            return ACCEPT_REPLY, self._gate

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        login = data.login.decode() if isinstance(data.login, bytes) else str(data.login)
        password = data.password.decode() if isinstance(data.password, bytes) else data.password
        ok = self.credentials is not None and (login, password) == self.credentials
        if ok:
            self.logins.append(login)
        # handled=False: aiosmtpd answers a refusal itself (535); its default (True) sends
        # nothing and leaves the client waiting for a reply.
        return AuthResult(success=ok, handled=False)


class _Handler:
    """aiosmtpd's handler: refuses rejected recipients at RCPT, hands each DATA to the sink,
    waits out a held reply."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self.sink._lock:
            if address.lower() in self.sink._rejected_rcpt:
                self.sink.refused.append(REJECT_REPLY)
                return REJECT_REPLY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply, gate = self.sink._receive(envelope, session)
        if gate is not None:
            self.sink.holding.set()
            while not gate.is_set():
                await asyncio.sleep(0.01)
        return reply


class _CountingSMTP(SMTP):
    """aiosmtpd's server, telling the sink about each new connection."""

    def __init__(self, sink: SmtpSink, *args: Any, **kwargs: Any) -> None:
        self._sink = sink
        super().__init__(*args, **kwargs)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._sink._connected()
        super().connection_made(transport)


class _CountingController(Controller):
    """aiosmtpd's controller, serving :class:`_CountingSMTP`."""

    def __init__(self, sink: SmtpSink, *args: Any, **kwargs: Any) -> None:
        self._sink = sink
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        return _CountingSMTP(self._sink, self.handler, **self.SMTP_kwargs)


class _DownListener:
    """Listens on the sink's port while it is down: greets ``421``, hangs up, counts."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((sink.host, sink.port))
        self.socket.listen(64)
        self.socket.settimeout(0.05)
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="smtp-sink-down", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.closing.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.sink._refused_one()
            with contextlib.suppress(OSError), connection:
                connection.sendall(f"{DOWN_REPLY}\r\n".encode())

    def close(self) -> None:
        self.closing.set()
        self.thread.join(timeout=5)
        self.socket.close()
