"""gcmc_jobs.testing.SmtpSink: a real SMTP server that records, refuses, holds and counts."""

from __future__ import annotations

import smtplib
import threading
from email.message import EmailMessage

import pytest

from gcmc_jobs.testing import SmtpSink, wait_until


def _message(to: str, *, dedup_key: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "no-reply@gcmc.example"
    message["To"] = to
    message["Subject"] = f"about {dedup_key}"
    message["Message-ID"] = message_id
    message["X-GCMC-Dedup-Key"] = dedup_key
    message.set_content("hello")
    return message


def _send(sink: SmtpSink, message: EmailMessage, *, login: tuple[str, str] | None = None) -> None:
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        if login is not None:
            client.login(*login)
        client.send_message(message)


def test_it_counts_deliveries_per_dedup_key_message_id_and_recipient(
    smtp_server: SmtpSink,
) -> None:
    _send(smtp_server, _message("Ann@Example.com", dedup_key="k1", message_id="<1@x>"))
    _send(smtp_server, _message("ann@example.com", dedup_key="k1", message_id="<1@x>"))
    _send(smtp_server, _message("bob@example.com", dedup_key="k2", message_id="<2@x>"))

    assert smtp_server.count() == 3
    assert smtp_server.per_dedup_key() == {"k1": 2, "k2": 1}
    assert smtp_server.per_message_id() == {"<1@x>": 2, "<2@x>": 1}
    assert smtp_server.per_recipient() == {"ann@example.com": 2, "bob@example.com": 1}
    first = smtp_server.deliveries[0]
    assert (first.recipients, first.subject) == (("Ann@Example.com",), "about k1")
    assert smtp_server.messages[2]["To"] == "bob@example.com"
    assert smtp_server.envelopes[2] == ("no-reply@gcmc.example", ["bob@example.com"])


def test_a_rejected_recipient_is_refused_for_good_and_not_counted(smtp_server: SmtpSink) -> None:
    smtp_server.reject("Gone@Example.com")

    for _ in range(2):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            _send(smtp_server, _message("gone@example.com", dedup_key="g", message_id="<g@x>"))
        assert refused.value.smtp_code == 550
    _send(smtp_server, _message("here@example.com", dedup_key="h", message_id="<h@x>"))

    assert smtp_server.per_dedup_key() == {"h": 1}
    assert smtp_server.refused == ["550 5.1.1 mailbox unavailable"] * 2


def test_a_held_reply_is_recorded_at_once_and_sent_on_release(smtp_server: SmtpSink) -> None:
    smtp_server.hold()
    replied = threading.Event()

    def send() -> None:
        _send(smtp_server, _message("ann@example.com", dedup_key="w", message_id="<w@x>"))
        replied.set()

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(smtp_server.holding.is_set, timeout_s=30, what="the sink to hold a reply")

    # The server has the message; the client does not know it yet
    assert smtp_server.per_dedup_key() == {"w": 1}
    assert not replied.is_set()

    smtp_server.release()
    sender.join(timeout=30)
    assert replied.is_set()


def test_it_listens_again_on_the_same_address_after_a_stop(smtp_server: SmtpSink) -> None:
    url = smtp_server.url
    smtp_server.stop()
    with pytest.raises(ConnectionRefusedError):
        _send(smtp_server, _message("ann@example.com", dedup_key="a", message_id="<a@x>"))

    smtp_server.start()
    _send(smtp_server, _message("ann@example.com", dedup_key="b", message_id="<b@x>"))

    assert smtp_server.url == url
    assert smtp_server.per_dedup_key() == {"b": 1}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_with_credentials_it_requires_auth_and_refuses_a_wrong_password() -> None:
    with SmtpSink(credentials=("mailer", "s3cret")) as sink:
        assert sink.url == f"smtp://mailer:s3cret@127.0.0.1:{sink.port}?starttls=off"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            _send(sink, _message("a@example.com", dedup_key="x", message_id="<x@x>"),
                  login=("mailer", "wrong"))  # fmt: skip
        with pytest.raises(smtplib.SMTPSenderRefused):
            _send(sink, _message("a@example.com", dedup_key="y", message_id="<y@x>"))
        _send(sink, _message("a@example.com", dedup_key="z", message_id="<z@x>"),
              login=("mailer", "s3cret"))  # fmt: skip

        assert sink.per_dedup_key() == {"z": 1}
        assert sink.logins == ["mailer"]
