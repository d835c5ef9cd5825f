"""The webhook client's HTTP/1.1 against servers that answer in the other ways HTTP allows:
chunked bodies, interim 1xx answers, a body up to the connection's end, a kept-alive
connection the server closes while it is idle; and over TLS."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gcmc_jobs.testing.webhooks import WebhookReceiver
from gcmc_jobs.webhooks.client import WebhookClient

BODY = b'{"type":"webhook.test","timestamp":"2026-12-02T04:00:00Z","data":{}}'


class RawServer:
    """A loopback server that reads each request and sends the bytes a script gives for
    it; ``after`` of an answer: "keep" (the next request on the same connection) or
    "close" (the server closes, then sets :attr:`closed`)."""

    def __init__(self, answers: list[tuple[bytes, str]]) -> None:
        self.answers = answers
        self.accepted = 0
        self.requests: list[bytes] = []
        self.closed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += conn.recv(65536)
        return head + b"\r\n\r\n" + body

    def _serve(self) -> None:
        answers = iter(self.answers)
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                while (request := self._read_request(conn)) is not None:
                    self.requests.append(request)
                    answer, after = next(answers)
                    conn.sendall(answer)
                    if after == "close":
                        break
            self.closed.set()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def stop(self) -> None:
        self.listener.close()


@pytest.fixture
def client() -> Iterator[WebhookClient]:
    made = WebhookClient(allow_private=True, read_timeout_ms=2_000)
    yield made
    made.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[list[tuple[bytes, str]]], RawServer]]:
    started: list[RawServer] = []

    def start(answers: list[tuple[bytes, str]]) -> RawServer:
        started.append(RawServer(answers))
        return started[-1]

    yield start
    for server in started:
        server.stop()


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def test_one_request_is_one_write_with_every_header(
    raw_server: Callable[..., RawServer], client: WebhookClient
) -> None:
    server = raw_server([(OK, "keep")])
    assert client.post(server.url(), BODY, {"webhook-id": "msg_1"}).ok
    [request] = server.requests
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hooks HTTP/1.1"
    assert f"host: 127.0.0.1:{server.port}".encode() in lines
    assert b"webhook-id: msg_1" in lines
    assert b"content-type: application/json" in lines
    assert f"content-length: {len(BODY)}".encode() in lines
    assert body == BODY


def test_a_chunked_answer_is_read_whole_and_its_connection_reused(
    raw_server: Callable[..., RawServer], client: WebhookClient
) -> None:
    chunked = (
        b"HTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n"
    )
    server = raw_server([(chunked, "keep"), (OK, "keep")])
    first = client.post(server.url(), BODY, {})
    assert (first.status, first.body) == (202, b"hello world")
    assert client.post(server.url(), BODY, {}).ok
    assert server.accepted == 1


def test_a_chunked_answer_longer_than_the_cap_is_cut_and_its_connection_dropped(
    raw_server: Callable[..., RawServer],
) -> None:
    capped = WebhookClient(allow_private=True, max_response_bytes=8)
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n"
    server = raw_server([(chunked, "keep"), (OK, "keep")])
    try:
        first = capped.post(server.url(), BODY, {})
        assert (first.status, first.body) == (200, b"abcdefgh")
        assert capped.post(server.url(), BODY, {}).ok
        assert server.accepted == 2
    finally:
        capped.close()


def test_an_interim_answer_is_skipped(
    raw_server: Callable[..., RawServer], client: WebhookClient
) -> None:
    server = raw_server([(b"HTTP/1.1 100 Continue\r\n\r\n" + OK, "keep")])
    response = client.post(server.url(), BODY, {})
    assert (response.status, response.body) == (200, b"ok")


def test_a_body_without_a_length_ends_with_the_connection(
    raw_server: Callable[..., RawServer], client: WebhookClient
) -> None:
    server = raw_server([(b"HTTP/1.0 200 OK\r\n\r\nuntil the end", "close"), (OK, "keep")])
    first = client.post(server.url(), BODY, {})
    assert (first.status, first.body) == (200, b"until the end")
    assert client.post(server.url(), BODY, {}).ok
    assert server.accepted == 2


def test_a_kept_alive_connection_the_server_closed_while_idle_is_not_reused(
    raw_server: Callable[..., RawServer], client: WebhookClient
) -> None:
    # Given a server that answers with keep-alive, then closes the connection
    server = raw_server([(OK, "close"), (OK, "keep")])
    assert client.post(server.url(), BODY, {}).ok
    assert server.closed.wait(5)
    # When the next request goes to it, it goes on a new connection, and succeeds
    assert client.post(server.url(), BODY, {}).ok
    assert server.accepted == 2


def test_garbage_instead_of_an_answer_is_a_failed_attempt(
    raw_server: Callable[..., RawServer], client: WebhookClient
) -> None:
    server = raw_server([(b"SSH-2.0-OpenSSH\r\n\r\n", "close")])
    response = client.post(server.url(), BODY, {})
    assert response.status is None
    assert "ProtocolError" in (response.error or "")


def test_a_header_that_would_split_the_request_is_refused(
    raw_server: Callable[..., RawServer], client: WebhookClient
) -> None:
    server = raw_server([(OK, "keep")])
    response = client.post(server.url(), BODY, {"webhook-id": "x\r\nx-injected: 1"})
    assert response.status is None
    assert "unsafe" in (response.error or "")
    assert server.requests == []


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    directory: Path = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_https_verifies_the_certificate_and_pools_the_tls_connection(
    certificate: tuple[str, str],
) -> None:
    trusting = WebhookClient(allow_private=True, ca_certs=certificate[0])
    untrusting = WebhookClient(allow_private=True)
    with WebhookReceiver(tls=certificate) as receiver:
        try:
            # An unknown CA: no request is sent
            refused = untrusting.post(receiver.url(), BODY, {})
            assert refused.status is None
            assert "CERTIFICATE_VERIFY_FAILED" in (refused.error or "")
            assert receiver.requests == []
            # The trusted CA: every request on one TLS connection
            for _ in range(3):
                assert trusting.post(receiver.url(), BODY, {}).ok
            assert len(receiver.requests) == 3
            assert receiver.connections == 1  # (the refused handshake never completed)
        finally:
            trusting.close()
            untrusting.close()
