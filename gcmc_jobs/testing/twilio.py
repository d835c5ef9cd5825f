"""A real HTTP server that answers as Twilio's Messages resource does, for tests.

:class:`TwilioSink` listens on a free loopback port (the OS picks it: port 0) and accepts
``POST /2010-04-01/Accounts/{sid}/Messages.json`` as Twilio does: basic auth (the account SID
and auth token it was made with; anything else is a ``401`` with error ``20003``), a form with
``To``, ``Body`` and ``From`` or ``MessagingServiceSid`` (a missing one is a ``400``), and a
``201`` JSON answer with a message SID (``SM`` + 32 hex digits). It records every request
(:attr:`requests`: path, the decoded ``Authorization`` user and password, the form fields)
and the messages it accepted (:attr:`messages`).

It misbehaves on demand: :meth:`script` queues the next answers (``(status, code)``, e.g.
``(429, 20429)``, ``(503, None)``, ``(400, 21211)``); :meth:`invalid` makes a number a
``400`` / ``21211`` ("The 'To' number is not a valid phone number") and :meth:`stopped` a
``400`` / ``21610`` (the recipient replied STOP), for good. Point ``sms_twilio_base_url`` at
:attr:`base_url` (``GCMC_JOBS_SMS_URL=twilio://``).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

__all__ = ["TwilioRequest", "TwilioSink"]

_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_MESSAGES = {
    20003: "Authentication Error - invalid username",
    20429: "Too Many Requests",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio number.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
}


@dataclass(frozen=True)
class TwilioRequest:
    """One request the sink received: its path, basic-auth credentials (None when absent or
    not basic) and form fields (the last value of each)."""

    path: str
    username: str | None
    password: str | None
    form: dict[str, str]
    content_type: str


class TwilioSink:
    """A local imitation of Twilio's Messages API (module docstring). Use as a context
    manager, or :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-token",  # noqa: S107  (a test server's, not a secret)
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[TwilioRequest] = []
        #: The form of every message answered 201, in order.
        self.messages: list[dict[str, str]] = []
        #: TCP connections accepted (clients that keep connections alive open few).
        self.connections = 0
        self._script: deque[tuple[int, int | None]] = deque()
        self._invalid: set[str] = set()
        self._stopped: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the value of ``sms_twilio_base_url``."""
        if self._server is None:
            raise RuntimeError("the Twilio sink is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def settings(self) -> dict[str, Any]:
        """The settings that point gcmc-jobs at this sink (for ``model_copy(update=...)``)."""
        return {
            "sms_url": "twilio://",
            "sms_twilio_base_url": self.base_url,
            "sms_twilio_account_sid": self.account_sid,
            "sms_twilio_auth_token": self.auth_token,
            "sms_from": "+15005550006",
        }

    def script(self, *answers: tuple[int, int | None]) -> None:
        """Answer the next requests with these ``(status, Twilio error code)`` pairs."""
        with self._lock:
            self._script.extend(answers)

    def invalid(self, *numbers: str) -> None:
        """Refuse messages to ``numbers`` with 400 / 21211, for good."""
        with self._lock:
            self._invalid.update(numbers)

    def stopped(self, *numbers: str) -> None:
        """Refuse messages to ``numbers`` with 400 / 21610 (they replied STOP), for good."""
        with self._lock:
            self._stopped.update(numbers)

    # -- the server ----------------------------------------------------------------------

    def _answer(self, request: TwilioRequest, sid: str | None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            scripted = self._script.popleft() if self._script else None
        form = request.form
        if sid is None:
            return 404, _error(404, 20404, "The requested resource was not found")
        if (
            sid != self.account_sid
            or request.username != self.account_sid
            or request.password != self.auth_token
        ):
            return 401, _error(401, 20003)
        if scripted is not None:
            status, code = scripted
            return status, _error(status, code, to=form.get("To", ""))
        if not form.get("To"):
            return 400, _error(400, 21604)
        if not form.get("Body"):
            return 400, _error(400, 21602)
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return 400, _error(400, 21606)
        if form["To"] in self._stopped:
            return 400, _error(400, 21610)
        if form["To"] in self._invalid:
            return 400, _error(400, 21211, to=form["To"])
        message_sid = "SM" + uuid.uuid4().hex
        with self._lock:
            self.messages.append(form)
        return 201, {
            "sid": message_sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued",
            "num_segments": "1",
            "error_code": None,
            "error_message": None,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
        }

    def start(self) -> TwilioSink:
        """Listen on a free loopback port, in a daemon thread."""
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Twilio's API does

            def setup(self) -> None:
                super().setup()
                with sink._lock:
                    sink.connections += 1

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                fields = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                username, password = _basic(self.headers.get("Authorization"))
                request = TwilioRequest(
                    self.path,
                    username,
                    password,
                    fields,
                    self.headers.get("Content-Type", ""),
                )
                match = _PATH.match(self.path)
                status, document = sink._answer(request, match["sid"] if match else None)
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the tests read sink.requests

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TwilioSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _basic(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.startswith("Basic "):
        return None, None
    try:
        decoded = base64.b64decode(header.removeprefix("Basic ")).decode("utf-8")
    except ValueError:
        return None, None
    username, _, password = decoded.partition(":")
    return username, password


def _error(
    status: int, code: int | None, message: str | None = None, to: str = ""
) -> dict[str, Any]:
    text = message or _MESSAGES.get(code or 0, "Error").format(to=to)
    document: dict[str, Any] = {"status": status, "message": text}
    if code is not None:
        document["code"] = code
        document["more_info"] = f"https://www.twilio.com/docs/errors/{code}"
    return document
