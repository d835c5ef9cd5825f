"""Digests to email messages: the document digest's risk-level changes travel in its
payload, a digest of changes only is one email, and a long list is split into parts."""

from __future__ import annotations

from datetime import date

import pytest

from gcmc_jobs.actors.email import email_message
from gcmc_jobs.scheduling.mailing import MAX_ITEMS_PER_EMAIL, digest_messages
from gcmc_jobs.services.digests import Digest

TODAY = date(2026, 3, 10)


def _change(n: int) -> dict[str, object]:
    return {
        "client_id": n,
        "client_name": f"Client {n}",
        "previous_level": "low",
        "level": "high",
        "score": 40,
    }


def _digest(changes: int) -> Digest:
    return Digest(
        "document_expiry_warning",
        1,
        2,
        "sam@example.com",
        "Sam",
        "Acme",
        TODAY,
        risk_changes=[_change(n) for n in range(changes)],
    )


@pytest.mark.usefixtures("gcmc_broker")
def test_a_digest_of_risk_changes_only_is_one_email_linking_each_client() -> None:
    [message] = digest_messages(
        [_digest(1)], portal_url="https://portal.example/", build_message=email_message
    )
    payload = message.kwargs["payload"]
    assert payload["items"] == []
    assert payload["risk_changes"] == [
        {
            "client_name": "Client 0",
            "previous_level": "low",
            "level": "high",
            "score": 40,
            "url": "https://portal.example/clients/0",
        }
    ]
    assert message.options["dedup_key"] == "digest:document_expiry_warning:1:2:2026-03-10"


@pytest.mark.usefixtures("gcmc_broker")
def test_more_risk_changes_than_an_email_takes_are_split_into_parts() -> None:
    messages = digest_messages(
        [_digest(MAX_ITEMS_PER_EMAIL + 1)],
        portal_url="https://portal.example",
        build_message=email_message,
    )
    assert [len(m.kwargs["payload"]["risk_changes"]) for m in messages] == [
        MAX_ITEMS_PER_EMAIL,
        1,
    ]
    assert messages[1].options["dedup_key"].endswith(":part2")
