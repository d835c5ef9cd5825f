"""The SMS channel's public names, pinned."""

from __future__ import annotations

import gcmc_jobs.sms
import gcmc_jobs.sms.transports

SMS = {
    "SMS_CATEGORIES",
    "OptIn",
    "SmsDelivery",
    "SmsMessage",
    "SmsOutcome",
    "SmsTransport",
    "alert_body",
    "check_body",
    "deliver_sms",
    "normalize_phone",
    "opt_in",
    "opt_ins",
    "opt_out",
}
TRANSPORTS = {
    "FileSmsTransport",
    "MemorySmsTransport",
    "SmsMessage",
    "SmsTransport",
    "TwilioTransport",
    "from_settings",
    "memory",
}


def test_the_sms_package_exports_exactly_its_public_names() -> None:
    assert set(gcmc_jobs.sms.__all__) == SMS
    assert set(gcmc_jobs.sms.transports.__all__) == TRANSPORTS
    for module, names in ((gcmc_jobs.sms, SMS), (gcmc_jobs.sms.transports, TRANSPORTS)):
        for name in names:
            assert hasattr(module, name), name
