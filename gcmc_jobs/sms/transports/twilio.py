"""Twilio's Messages resource over HTTP.

``POST {base_url}/2010-04-01/Accounts/{sid}/Messages.json``:

The request is a form (``To``, ``Body``, and ``From`` or ``MessagingServiceSid``) with basic
auth (account SID : auth token); a ``201`` answer carries the message SID (``SM…``). One
``httpx.Client`` per transport keeps a pool of connections alive across messages and threads.

How an answer is classified (Twilio answers errors as JSON: ``code``, ``message``,
``more_info``, ``status``):

=======================================  ==============================================
answer                                   raised
=======================================  ==============================================
``2xx``                                  nothing: the SID is returned
``429``, ``5xx``, a timeout, a refused   :class:`~gcmc_jobs.errors.TransientDeliveryError`
or dropped connection                    (Dramatiq retries the message with backoff)
``21610`` (the recipient replied STOP)   :class:`~gcmc_jobs.errors.SmsRejected`, ``suppress="stop"``
``21211``, ``21214``, ``21217``,         :class:`~gcmc_jobs.errors.SmsRejected`,
``21614`` (the number is invalid,        ``suppress="permanent_error"``
unreachable or not a mobile)
any other ``4xx`` (a bad sender, the     :class:`~gcmc_jobs.errors.SmsRejected`, ``suppress=None``:
account, the region)                     the message fails, the number is not blamed
=======================================  ==============================================

The auth token never appears in an error, a log line or ``repr``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gcmc_jobs.errors import ConfigurationError, SmsRejected, TransientDeliveryError
from gcmc_jobs.sms.transports.base import SmsMessage, SmsTransport

if TYPE_CHECKING:
    import httpx

__all__ = ["NUMBER_ERROR_CODES", "STOP_ERROR_CODES", "TwilioTransport"]

#: Twilio error codes that mean the recipient unsubscribed (replied STOP).
STOP_ERROR_CODES = frozenset({21610})
#: Twilio error codes that mean the number itself cannot receive SMS, for good.
NUMBER_ERROR_CODES = frozenset({21211, 21214, 21217, 21614})


class TwilioTransport(SmsTransport):
    """Send through Twilio's Messages API (module docstring).

    Parameters:
      account_sid: the account (``AC…``), in the URL path and as the basic-auth user.
      auth_token: the basic-auth password.
      sender: an E.164 number (sent as ``From``) or a Messaging Service SID (``MG…``, sent as
        ``MessagingServiceSid``).
      base_url: Twilio's API root (``https://api.twilio.com``; a local server in tests).
      timeout_ms: bound of each connect, read and write, ms (10,000).
      transport: an ``httpx`` transport to use instead of the network (for ``httpx``'s own
        test transports).
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender: str,
        base_url: str = "https://api.twilio.com",
        timeout_ms: int = 10_000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx  # deferred: only a process that sends SMS through Twilio needs it

        if not account_sid or not auth_token:
            raise ConfigurationError(
                "the twilio:// SMS transport needs GCMC_JOBS_SMS_TWILIO_ACCOUNT_SID and "
                "GCMC_JOBS_SMS_TWILIO_AUTH_TOKEN"
            )
        if not sender:
            raise ConfigurationError(
                "the twilio:// SMS transport needs GCMC_JOBS_SMS_FROM: an E.164 number or a "
                "Messaging Service SID (MG…)"
            )
        self.account_sid = account_sid
        self.sender = sender
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._client = httpx.Client(
            auth=(account_sid, auth_token),
            timeout=timeout_ms / 1000,
            follow_redirects=False,
            headers={"Accept": "application/json"},
            transport=transport,
        )

    def __repr__(self) -> str:  # never shows the token
        return f"TwilioTransport({self.base_url}, account={self.account_sid})"

    def form(self, message: SmsMessage) -> dict[str, str]:
        """The form fields of ``message``'s request."""
        sender_field = "MessagingServiceSid" if self.sender.startswith("MG") else "From"
        return {"To": message.to, sender_field: self.sender, "Body": message.body}

    def send(self, message: SmsMessage) -> str:
        import httpx

        try:
            response = self._client.post(self.url, data=self.form(message))
        except httpx.HTTPError as exc:  # timeouts, refused and dropped connections
            raise TransientDeliveryError(
                f"Twilio at {self.base_url} could not be reached: {type(exc).__name__}"
            ) from None
        if response.is_success:
            sid = _json(response).get("sid")
            if not isinstance(sid, str) or not sid:
                raise TransientDeliveryError(
                    f"Twilio answered {response.status_code} without a message sid"
                )
            return sid
        raise self._refused(response)

    def _refused(self, response: httpx.Response) -> TransientDeliveryError | SmsRejected:
        status = response.status_code
        answer = _json(response)
        code = answer.get("code") if isinstance(answer.get("code"), int) else None
        text = str(answer.get("message") or response.reason_phrase or "").strip()[:300]
        detail = f"Twilio {status}" + (f" error {code}" if code else "") + f": {text}"
        if status == 429 or status >= 500:
            return TransientDeliveryError(detail)
        if code in STOP_ERROR_CODES:
            suppress: str | None = "stop"
        elif code in NUMBER_ERROR_CODES:
            suppress = "permanent_error"
        else:
            suppress = None
        return SmsRejected(detail, code=code, status=status, suppress=suppress)

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
