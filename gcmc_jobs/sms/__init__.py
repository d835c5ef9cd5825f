"""The SMS channel, beside email and in-app: alerts a user opted in to, by text message.

- :mod:`~gcmc_jobs.sms.numbers`: :func:`normalize_phone`, E.164 checked against each
  country's numbering plan;
- :mod:`~gcmc_jobs.sms.opt_ins`: who wants which categories by SMS, at which number
  (``sms_opt_ins``);
- :mod:`~gcmc_jobs.sms.bodies`: the alert texts and the rules of a body;
- :mod:`~gcmc_jobs.sms.transports`: :class:`SmsTransport`, Twilio's Messages API, a file
  and a memory transport;
- :mod:`~gcmc_jobs.sms.delivery`: :func:`deliver_sms`, once per dedup key (``sms_log``),
  suppressions applied (``sms_suppressions``).

The actor is :func:`gcmc_jobs.actors.send_sms` on its own queue, ``gcmc_sms``.
"""

from __future__ import annotations

from gcmc_jobs.sms.bodies import alert_body, check_body
from gcmc_jobs.sms.delivery import SmsDelivery, SmsOutcome, deliver_sms
from gcmc_jobs.sms.numbers import normalize_phone
from gcmc_jobs.sms.opt_ins import SMS_CATEGORIES, OptIn, opt_in, opt_ins, opt_out
from gcmc_jobs.sms.transports.base import SmsMessage, SmsTransport

__all__ = [
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
]
