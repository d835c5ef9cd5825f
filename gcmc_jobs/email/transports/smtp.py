"""SMTP delivery with one reused connection per worker thread and bounded in-attempt retries.

URL forms (``settings.email_url``)::

    smtp://host[:port]                    plain SMTP (port 25); STARTTLS when the server offers it
    smtp://user:password@host:587?starttls=required
    smtp://host:1025?starttls=off         never STARTTLS (a local test server)
    smtps://user:password@host[:465]      TLS from the first byte (implicit TLS)

Query parameters: ``starttls`` = ``auto`` (default: upgrade when offered) | ``required``
(refuse to send in clear) | ``off``; ``verify`` = ``true`` (default) | ``false`` (accept any
certificate: for test servers only). Credentials come from the URL's userinfo
(percent-encoded) and are never logged.

Each worker thread keeps its own connection (``threading.local``): no lock, no sharing of a
socket between threads, and one connection reused for every message that thread sends. A
failure drops the thread's connection; the next try connects again.

Internationalised addresses: a non-ASCII domain travels in IDNA form; a non-ASCII local part
is sent with SMTPUTF8 (RFC 6531) when the server offers it, and is a
:class:`PermanentDeliveryError` for that email alone when it does not. After any exception
inside an SMTP transaction the connection is reset (smtplib's RSET on a refusal) or dropped,
so the next email on the thread starts clean.

Failures are classified: connection errors, timeouts and 4xx replies are transient, retried
here a few times with a small jittered wait (``retry_attempts``, ``retry_max_wait_ms``;
``sleep`` is injectable), then raised as :class:`TransientDeliveryError` for Dramatiq's
``Retries``; a 5xx reply raises :class:`PermanentDeliveryError` at once, and a 5xx refusal of
the recipient saying its mailbox does not exist (``5.1.1``, :mod:`gcmc_jobs.email.bounce_codes`)
raises :class:`MailboxNotFound`, which suppresses the address.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from gcmc_jobs.email.bounce_codes import mailbox_does_not_exist
from gcmc_jobs.email.mime import envelope, needs_utf8, to_bytes
from gcmc_jobs.email.transports.base import Transport
from gcmc_jobs.errors import (
    ConfigurationError,
    MailboxNotFound,
    PermanentDeliveryError,
    TransientDeliveryError,
)

__all__ = ["SmtpTransport"]

_STARTTLS = ("auto", "required", "off")
_UTF8 = ("SMTPUTF8",)


class SmtpTransport(Transport):
    """Deliver over SMTP; see the module docstring for URL forms and failure handling.

    ``timeout_ms`` bounds every socket operation (default 10,000 ms); ``retry_attempts``
    (default 3) is how many times one :meth:`send` tries; ``retry_max_wait_ms`` (default
    1,000 ms) caps the jittered exponential wait between tries, which starts at 50 ms.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_ms: int = 10_000,
        retry_attempts: int = 3,
        retry_max_wait_ms: int = 1_000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigurationError("an SMTP email URL looks like smtp://user:pass@host:port")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else ""
        self.starttls = query.get("starttls", "auto")
        if self.starttls not in _STARTTLS:
            raise ConfigurationError(f"starttls must be one of {_STARTTLS}, got {self.starttls!r}")
        self.tls_context = ssl.create_default_context()
        if query.get("verify", "true").lower() in ("false", "0", "no"):
            self.tls_context.check_hostname = False
            self.tls_context.verify_mode = ssl.CERT_NONE
        self.timeout_ms = timeout_ms
        self.retry_attempts = max(1, retry_attempts)
        self.retry_max_wait_ms = retry_max_wait_ms
        self.sleep = sleep
        self._local = threading.local()
        self._all: set[smtplib.SMTP] = set()
        self._all_lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the password
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"SmtpTransport({scheme}://{self.host}:{self.port}, starttls={self.starttls})"

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        timeout = self.timeout_ms / 1000
        where = f"{self.host}:{self.port}"
        try:
            connection: smtplib.SMTP
            if self.implicit_tls:
                connection = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=timeout, context=self.tls_context
                )
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=timeout)
            try:
                connection.ehlo()
                if not self.implicit_tls and self.starttls != "off":
                    if connection.has_extn("starttls"):
                        connection.starttls(context=self.tls_context)
                        connection.ehlo()
                    elif self.starttls == "required":
                        raise TransientDeliveryError(
                            f"SMTP server {where} does not offer STARTTLS (starttls=required)"
                        )
                if self.username:
                    connection.login(self.username, self._password)
            except BaseException:
                _quietly_close(connection)
                raise
        except smtplib.SMTPResponseException as exc:
            raise _classify(exc.smtp_code, exc.smtp_error, f"connecting to {where}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientDeliveryError(
                f"cannot connect to SMTP server {where}: {type(exc).__name__}: {exc}"
            ) from None
        with self._all_lock:
            self._all.add(connection)
        return connection

    def _connection(self) -> smtplib.SMTP:
        connection: smtplib.SMTP | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        return connection

    def _drop(self) -> None:
        connection: smtplib.SMTP | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._all_lock:
                self._all.discard(connection)
            _quietly_close(connection)

    def close(self) -> None:
        """Close every thread's connection (politely, with QUIT)."""
        with self._all_lock:
            connections, self._all = list(self._all), set()
        for connection in connections:
            try:
                connection.quit()
            except (OSError, smtplib.SMTPException):
                _quietly_close(connection)
        self._local = threading.local()

    def probe(self) -> None:
        """Connect on a connection of its own (greeting, EHLO, STARTTLS and login as for a
        send), say ``NOOP`` and ``QUIT``: :class:`TransientDeliveryError` when the server is
        unreachable or answers 4xx, :class:`PermanentDeliveryError` on a 5xx. Sends no mail
        and leaves the threads' connections alone."""
        connection = self._connect()
        with self._all_lock:
            self._all.discard(connection)
        try:
            code, reply = connection.noop()
        except (OSError, smtplib.SMTPException) as exc:
            _quietly_close(connection)
            raise TransientDeliveryError(
                f"SMTP server {self.host}:{self.port} failed a probe: {type(exc).__name__}"
            ) from None
        if code != 250:
            _quietly_close(connection)
            raise _classify(code, reply, "probe (NOOP)")
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            _quietly_close(connection)

    # -- sending -------------------------------------------------------------------------

    def _send_once(self, sender: str, recipients: list[str], data: bytes, *, utf8: bool) -> None:
        connection = self._connection()
        if utf8 and not connection.has_extn("smtputf8"):
            # Checked before MAIL FROM: no transaction is open, the connection stays usable.
            address = next(a for a in (*recipients, sender) if not a.isascii())
            raise PermanentDeliveryError(
                f"{address!r} has a non-ASCII local part, which needs SMTPUTF8; SMTP server "
                f"{self.host}:{self.port} does not offer it"
            )
        try:
            connection.sendmail(sender, recipients, data, mail_options=_UTF8 if utf8 else ())
        except smtplib.SMTPRecipientsRefused as exc:
            # smtplib sent RSET (or closed on a 421): the connection is out of the transaction.
            address, (code, reply) = next(iter(exc.recipients.items()))
            if code == 421:
                self._drop()
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
            if 500 <= code < 600 and mailbox_does_not_exist(code, text):
                raise MailboxNotFound(
                    f"recipient refused: {code} {text}".strip(), address=str(address), code=code
                ) from None
            raise _classify(code, reply, "recipient refused") from None
        except smtplib.SMTPResponseException as exc:
            # Sender refused / data refused: smtplib sent RSET, or closed on a 421.
            if exc.smtp_code == 421 or exc.smtp_code < 400:
                self._drop()  # 421: the server is closing this connection
            raise _classify(exc.smtp_code, exc.smtp_error, "message refused") from None
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TransientDeliveryError(
                f"SMTP connection to {self.host}:{self.port} failed: {type(exc).__name__}"
            ) from None
        except BaseException:
            # Anything else (an encoding error, a time limit raised in this thread) may leave
            # the connection in the middle of a transaction, where the next email would get
            # "503 nested MAIL command": drop it, so no other email is ever affected.
            self._drop()
            raise

    def send(self, message: EmailMessage) -> str:
        sender, recipients = envelope(message)
        utf8 = needs_utf8(message)
        data = to_bytes(message, utf8=utf8)
        retrying = Retrying(
            stop=stop_after_attempt(self.retry_attempts),
            wait=wait_random_exponential(multiplier=0.05, max=self.retry_max_wait_ms / 1000),
            retry=retry_if_exception_type(TransientDeliveryError),
            sleep=self.sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self._send_once(sender, recipients, data, utf8=utf8)
        return str(message["Message-ID"])


def _classify(
    code: int, reply: bytes | str, what: str
) -> TransientDeliveryError | PermanentDeliveryError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    detail = f"{what}: {code} {text}".strip()
    if 500 <= code < 600:
        return PermanentDeliveryError(detail)
    return TransientDeliveryError(detail)


def _quietly_close(connection: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        connection.close()
