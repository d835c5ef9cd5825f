"""Transports against a real SMTP server (aiosmtpd), a directory, and memory."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture
def utf8_server() -> Iterator[SmtpSink]:
    """An SMTP server that offers SMTPUTF8 (``smtp_server`` does not)."""
    with SmtpSink(smtputf8=True) as sink:
        yield sink


def test_smtp_sends_a_non_ascii_local_part_with_smtputf8_when_the_server_offers_it(
    utf8_server: SmtpSink,
) -> None:
    transport = SmtpTransport(utf8_server.url)
    transport.send(_message("jürgen@müller.example"))
    transport.close()
    [delivery] = utf8_server.deliveries
    assert delivery.recipients == ("jürgen@xn--mller-kva.example",)
    assert "SMTPUTF8" in delivery.mail_options
    assert delivery.message["To"] == "jürgen@xn--mller-kva.example"


@pytest.mark.parametrize("offers_smtputf8", [False, True], ids=["plain", "smtputf8"])
def test_smtp_sends_an_internationalised_domain_in_idna_form(offers_smtputf8: bool) -> None:
    with SmtpSink(smtputf8=offers_smtputf8) as sink:
        transport = SmtpTransport(sink.url)
        transport.send(_message("jane@müller.example"))
        transport.close()
        [delivery] = sink.deliveries
    assert delivery.recipients == ("jane@xn--mller-kva.example",)
    assert "SMTPUTF8" not in delivery.mail_options  # plain ASCII: not needed
    assert delivery.message["To"] == "jane@xn--mller-kva.example"


def test_smtp_a_non_ascii_local_part_without_smtputf8_fails_for_that_email_alone(
    smtp_server: SmtpSink,
) -> None:
    # Given a server without SMTPUTF8 and one connection reused by the thread
    waits: list[float] = []
    transport = SmtpTransport(smtp_server.url, sleep=waits.append)
    transport.send(_message("first@example.com"))
    # When an email to a non-ASCII local part is sent
    with pytest.raises(PermanentDeliveryError, match=r"jürgen@xn--mller-kva\.example.*SMTPUTF8"):
        transport.send(_message("jürgen@müller.example"))
    # Then it failed for good at once, and the next, unrelated email is delivered
    transport.send(_message("next@example.com"))
    transport.close()
    assert waits == []
    assert smtp_server.refused == []
    assert [d.recipients for d in smtp_server.deliveries] == [
        ("first@example.com",),
        ("next@example.com",),
    ]


def test_smtp_an_exception_after_mail_from_drops_the_connection_so_the_next_email_goes(
    smtp_server: SmtpSink,
) -> None:
    # Given a connection that has sent one email
    transport = SmtpTransport(smtp_server.url, sleep=lambda _: None)
    transport.send(_message("first@example.com"))
    first = transport._local.connection
    # When an exception is raised inside the next transaction, after MAIL FROM (smtplib
    # cannot encode a non-ASCII RCPT TO without SMTPUTF8: the UnicodeEncodeError)
    with pytest.raises(UnicodeEncodeError):
        transport._send_once(
            "no-reply@gcmc.example", ["jürgen@example.com"], b"Subject: x\r\n\r\nx\r\n", utf8=False
        )
    # Then that connection was dropped, and the next email goes on a new one (no "503 nested
    # MAIL command")
    assert transport._local.connection is None
    transport.send(_message("next@example.com"))
    assert transport._local.connection is not first
    transport.close()
    assert [d.recipients for d in smtp_server.deliveries] == [
        ("first@example.com",),
        ("next@example.com",),
    ]
    assert len(set(smtp_server.peers)) == 2


def test_smtp_a_timeout_inside_a_transaction_drops_the_connection_so_the_next_email_goes(
    smtp_server: SmtpSink,
) -> None:
    # Given a server that holds its reply to DATA past the client's timeout
    transport = SmtpTransport(smtp_server.url, timeout_ms=300, retry_attempts=1)
    smtp_server.hold()
    with pytest.raises(TransientDeliveryError):
        transport.send(_message("slow@example.com"))
    smtp_server.release()
    # When the thread sends its next email
    transport.send(_message("next@example.com"))
    transport.close()
    # Then it is delivered, on a new connection
    assert smtp_server.deliveries[-1].recipients == ("next@example.com",)
    assert len(set(smtp_server.peers)) == 2


def test_file_transport_writes_a_non_ascii_address_as_utf8(tmp_path: Path) -> None:
    transport = FileTransport(str(tmp_path))
    path = transport.send(_message("jürgen@müller.example"))
    content = Path(path).read_bytes()
    assert "To: jürgen@xn--mller-kva.example".encode() in content


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
