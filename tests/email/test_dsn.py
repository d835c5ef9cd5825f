"""RFC 3464 delivery status notifications: parsed from .eml files, an mbox and a Maildir,
hard and soft bounces told apart, tied to the email by its headers, read twice once."""

from __future__ import annotations

import mailbox
from pathlib import Path

from sqlalchemy import Engine

from gcmc_jobs.db.enums import EmailEventKind, SuppressionReason
from gcmc_jobs.email.bounce_codes import mailbox_does_not_exist
from gcmc_jobs.email.dsn import parse_dsn, read_messages
from gcmc_jobs.ops.suppressions import ingest_dsns
from gcmc_jobs.services import email_log
from gcmc_jobs.services.bounces import BouncePolicy, events_of


def dsn(
    recipient: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
    dsn_id: str = "<dsn-1@mx.example>",
    dedup_key: str = "welcome:abc",
) -> bytes:
    """A DSN as Postfix writes one: a human part, the status part, the original headers."""
    return (
        f"From: MAILER-DAEMON@mx.example\r\n"
        f"To: no-reply@gcmc.example\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: Wed, 02 Dec 2026 08:00:00 +0000\r\n"
        f"Message-ID: {dsn_id}\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        f"\r\n--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        f"\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example\r\nArrival-Date: Wed, 02 Dec 2026 07:59:00 +0000\r\n"
        f"\r\nFinal-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: {diagnostic.format(r=recipient)}\r\n"
        f"\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: no-reply@gcmc.example\r\nTo: {recipient}\r\nSubject: Welcome\r\n"
        f"Message-ID: <orig@gcmc.example>\r\nX-GCMC-Dedup-Key: {dedup_key}\r\n"
        f"\r\n--B--\r\n"
    ).encode()


def test_a_dsn_for_an_unknown_mailbox_is_a_hard_bounce_naming_the_email() -> None:
    [event] = parse_dsn(dsn("Gone@Example.com")) or []
    assert (event.source, event.address, event.kind, event.permanent) == (
        "dsn",
        "gone@example.com",
        EmailEventKind.BOUNCED,
        True,
    )
    assert (event.dedup_key, event.message_id) == ("welcome:abc", "<orig@gcmc.example>")
    assert event.event_id == "<dsn-1@mx.example>:gone@example.com"
    assert event.detail is not None
    assert "5.1.1" in event.detail


def test_a_full_mailbox_is_a_soft_bounce_and_a_delay_is_deferred() -> None:
    [full] = parse_dsn(dsn("a@example.com", status="5.2.2", diagnostic="smtp; 552 full")) or []
    [later] = parse_dsn(dsn("a@example.com", status="4.4.1", action="delayed")) or []
    assert (full.kind, full.permanent) == (EmailEventKind.BOUNCED, False)
    assert later.kind is EmailEventKind.DEFERRED


def test_a_message_that_is_not_a_dsn_is_none() -> None:
    assert parse_dsn(b"From: a@example.com\r\nSubject: out of office\r\n\r\nBack soon.\r\n") is None


def test_smtp_replies_meaning_no_such_mailbox() -> None:
    assert mailbox_does_not_exist(550, "5.1.1 <x@example.com>: user unknown")
    assert mailbox_does_not_exist(550, "5.1.10 null MX")
    assert mailbox_does_not_exist(550, "No such user here")
    assert not mailbox_does_not_exist(552, "5.2.2 mailbox full")
    assert not mailbox_does_not_exist(554, "5.7.1 rejected by policy")
    assert not mailbox_does_not_exist(550, "spam detected")


def _write_all(tmp_path: Path) -> dict[str, Path]:
    """The same three messages (two DSNs and a non-DSN) as .eml files, an mbox, a Maildir."""
    messages = [
        dsn("gone@example.com", dsn_id="<d1@mx>"),
        dsn(
            "full@example.com",
            status="5.2.2",
            diagnostic="smtp; 552 full",
            dsn_id="<d2@mx>",
            dedup_key="welcome:other",
        ),
        b"From: someone@example.com\r\nSubject: hello\r\n\r\nnot a bounce\r\n",
    ]
    eml = tmp_path / "eml"
    eml.mkdir()
    for i, raw in enumerate(messages):
        (eml / f"{i}.eml").write_bytes(raw)
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    for raw in messages:
        box.add(raw)
        maildir.add(raw)
    box.close()
    return {"eml": eml, "mbox": tmp_path / "bounces.mbox", "maildir": tmp_path / "Maildir"}


def test_eml_files_an_mbox_and_a_maildir_read_the_same_events(tmp_path: Path) -> None:
    found = {}
    for name, path in _write_all(tmp_path).items():
        events = [e for m in read_messages(path) for e in (parse_dsn(m.raw) or [])]
        found[name] = sorted((e.address, e.permanent, e.event_id) for e in events)
    assert found["eml"] == found["mbox"] == found["maildir"]
    assert found["eml"] == [
        ("full@example.com", False, "<d2@mx>:full@example.com"),
        ("gone@example.com", True, "<d1@mx>:gone@example.com"),
    ]
    single = tmp_path / "eml" / "0.eml"
    assert [m.origin for m in read_messages(single)] == [str(single)]


def test_ingesting_a_maildir_twice_suppresses_and_records_once(
    gcmc_db: Engine, tmp_path: Path
) -> None:
    with gcmc_db.begin() as connection:
        email_log.ensure_queued(
            connection, dedup_key="welcome:abc", to_address="gone@example.com", kind="welcome",
            subject="Welcome",
        )  # fmt: skip
    path = _write_all(tmp_path)["maildir"]
    seen: list[int] = []

    first = ingest_dsns(gcmc_db, path, policy=BouncePolicy(), batch_size=2, progress=seen.append)
    again = ingest_dsns(gcmc_db, path, policy=BouncePolicy())

    assert (first.messages, len(first.not_dsn), first.recorded) == (3, 1, 2)
    assert first.suppressed == {"gone@example.com": SuppressionReason.HARD_BOUNCE.value}
    assert seen == [2, 3]
    assert (again.recorded, again.duplicates, again.suppressed) == (0, 2, {})
    with gcmc_db.connect() as connection:
        assert [e["kind"] for e in events_of(connection, "welcome:abc")] == ["bounced"]
