"""The file and memory SMS transports (the demo's default and the tests')."""

from __future__ import annotations

import json
from pathlib import Path

from gcmc_jobs.settings import Settings
from gcmc_jobs.sms.transports import (
    FileSmsTransport,
    MemorySmsTransport,
    SmsMessage,
    from_settings,
)


def test_the_file_transport_writes_one_json_file_per_sms(tmp_path: Path) -> None:
    transport = from_settings(Settings(sms_url=f"file://{tmp_path}/out"))
    assert isinstance(transport, FileSmsTransport)

    path = transport.send(SmsMessage("+14155552671", "héllo", kind="custom", dedup_key="k"))

    [written] = (tmp_path / "out").glob("*.json")
    assert str(written) == path
    assert json.loads(written.read_text("utf-8")) == {
        "to": "+14155552671",
        "body": "héllo",
        "kind": "custom",
        "dedup_key": "k",
    }


def test_the_memory_transport_keeps_each_sms_in_its_list(gcmc_sms_outbox: list[SmsMessage]) -> None:
    transport = from_settings(Settings(sms_url="memory://"))
    assert isinstance(transport, MemorySmsTransport)
    first = transport.send(SmsMessage("+14155552671", "one"))
    second = transport.send(SmsMessage("+14155552671", "two"))
    assert first != second
    assert [m.body for m in gcmc_sms_outbox] == ["one", "two"]


def test_an_unknown_sms_url_is_a_setting_error_naming_it() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="GCMC_JOBS_SMS_URL must start with one of"):
        Settings(sms_url="https://api.twilio.com")
