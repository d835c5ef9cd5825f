"""Transports against a real SMTP server (aiosmtpd), a directory, and memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcmc_jobs.email import Welcome, render
from gcmc_jobs.email.mime import build_mime
from gcmc_jobs.email.transports import FileTransport, MemoryTransport, SmtpTransport, from_url
from gcmc_jobs.errors import (
    ConfigurationError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gcmc_jobs.testing import SmtpSink


def _message(to: str = "jane@example.com"):  # type: ignore[no-untyped-def]
    return build_mime(
        render("welcome", Welcome.sample()), to=to, sender="GCMC <no-reply@gcmc.example>"
    )


def test_smtp_reuses_one_connection_across_messages(smtp_server: SmtpSink) -> None:
    transport = SmtpTransport(smtp_server.url)
    for _ in range(3):
        transport.send(_message())
    transport.close()
    assert len(smtp_server.messages) == 3
    assert len(set(smtp_server.peers)) == 1


def test_smtp_sends_multipart_alternative_with_a_message_id(smtp_server: SmtpSink) -> None:
    transport = SmtpTransport(smtp_server.url)
    message_id = transport.send(_message())
    transport.close()
    received = smtp_server.messages[0]
    assert received["Message-ID"] == message_id
    assert received.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in received.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert smtp_server.envelopes == [("no-reply@gcmc.example", ["jane@example.com"])]


def test_smtp_retries_a_421_inside_the_attempt_and_delivers_once(smtp_server: SmtpSink) -> None:
    waits: list[float] = []
    smtp_server.script("421 4.3.0 try again later")
    transport = SmtpTransport(smtp_server.url, sleep=waits.append)
    transport.send(_message())
    transport.close()
    assert len(smtp_server.messages) == 1
    assert len(waits) == 1
    assert len(set(smtp_server.peers)) == 1  # 421 closed the connection: a new one sent


def test_smtp_gives_up_after_its_attempts_with_a_transient_error(smtp_server: SmtpSink) -> None:
    smtp_server.script("451 4.3.0 busy", "451 4.3.0 busy", "451 4.3.0 busy")
    transport = SmtpTransport(smtp_server.url, retry_attempts=3, sleep=lambda _: None)
    with pytest.raises(TransientDeliveryError, match="451"):
        transport.send(_message())
    transport.close()
    assert smtp_server.messages == []


def test_smtp_a_550_is_permanent_and_not_retried(smtp_server: SmtpSink) -> None:
    waits: list[float] = []
    smtp_server.script("550 5.1.1 no such user")
    transport = SmtpTransport(smtp_server.url, sleep=waits.append)
    with pytest.raises(PermanentDeliveryError, match="550"):
        transport.send(_message())
    transport.close()
    assert waits == []
    assert smtp_server.refused == ["550 5.1.1 no such user"]


def test_smtp_an_unreachable_server_is_transient(smtp_server: SmtpSink) -> None:
    url = smtp_server.url
    smtp_server.stop()
    transport = SmtpTransport(url, retry_attempts=2, timeout_ms=2_000, sleep=lambda _: None)
    with pytest.raises(TransientDeliveryError, match="cannot connect"):
        transport.send(_message())


def test_smtp_reconnects_after_the_server_dropped_the_connection(smtp_server: SmtpSink) -> None:
    transport = SmtpTransport(smtp_server.url, sleep=lambda _: None)
    transport.send(_message())
    transport._local.connection.sock.close()  # the server went away meanwhile
    transport.send(_message())
    transport.close()
    assert len(smtp_server.messages) == 2


def test_smtp_url_credentials_never_show(smtp_server: SmtpSink) -> None:
    transport = from_url("smtp://mailer:p%40ss-w0rd@127.0.0.1:2525?starttls=off")
    assert isinstance(transport, SmtpTransport)
    assert transport.username == "mailer"
    assert "w0rd" not in repr(transport)


def test_file_transport_writes_one_eml_per_email(tmp_path: Path) -> None:
    transport = from_url(f"file://{tmp_path}/outbox")
    assert isinstance(transport, FileTransport)
    path = Path(transport.send(_message()))
    assert path.parent == tmp_path / "outbox"
    assert path.suffix == ".eml"
    assert b"\r\nSubject: Welcome to Acme CPA, Jane Doe\r\n" in path.read_bytes()


def test_memory_transport_keeps_messages_in_order(gcmc_outbox: list[object]) -> None:
    transport = from_url("memory://")
    assert isinstance(transport, MemoryTransport)
    first, second = _message("a@example.com"), _message("b@example.com")
    transport.send(first)
    transport.send(second)
    assert gcmc_outbox == [first, second]


def test_an_unknown_email_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="smtp://"):
        from_url("sendgrid://key")
