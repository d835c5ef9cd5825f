"""The webhook HTTP client against a real local receiver: answers, failures, limits, pooling,
and the destination check at connect time."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from gcmc_jobs.errors import DestinationRefused
from gcmc_jobs.services.webhook_endpoints import new_secret
from gcmc_jobs.testing.webhooks import WebhookReceiver
from gcmc_jobs.webhooks.client import AddressGuard, WebhookClient, is_public
from gcmc_jobs.webhooks.signing import signed_headers

BODY = json.dumps({"type": "webhook.test", "timestamp": "2026-12-02T04:00:00Z", "data": {}})


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def client() -> Iterator[WebhookClient]:
    made = WebhookClient(allow_private=True, connect_timeout_ms=2_000, read_timeout_ms=300)
    yield made
    made.close()


def _post(client: WebhookClient, url: str) -> Any:
    return client.post(url, BODY.encode(), {"webhook-id": "msg_1"})


def test_a_signature_verifies_with_an_independent_implementation(
    receiver: WebhookReceiver, client: WebhookClient
) -> None:
    # Given a secret and a signed request
    secret = new_secret()
    import time

    headers = signed_headers(secret, "msg_abc", int(time.time()), BODY.encode())
    # When it is posted
    assert client.post(receiver.url(), BODY.encode(), headers).ok
    # Then the standardwebhooks package verifies what the receiver got
    [request] = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers) == json.loads(BODY)
    # And a tampered body fails its verification
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(secret).verify(request.body + b" ", request.headers)


def test_a_2xx_is_ok_with_its_latency_and_body(
    receiver: WebhookReceiver, client: WebhookClient
) -> None:
    response = _post(client, receiver.url())
    assert (response.ok, response.status, response.body, response.error) == (
        True, 200, b"ok", None,
    )  # fmt: skip
    assert response.latency_ms > 0


def test_a_5xx_is_a_failed_answer(receiver: WebhookReceiver, client: WebhookClient) -> None:
    receiver.script("error")
    response = _post(client, receiver.url())
    assert (response.ok, response.status, response.body) == (False, 500, b"receiver error")


def test_a_hanging_receiver_times_out(receiver: WebhookReceiver, client: WebhookClient) -> None:
    receiver.script("hang")
    response = _post(client, receiver.url())
    receiver.release()
    assert response.status is None
    assert "ReadTimeout" in (response.error or "")


def test_a_redirect_is_not_followed(receiver: WebhookReceiver, client: WebhookClient) -> None:
    receiver.script("redirect")
    response = _post(client, receiver.url())
    assert (response.ok, response.status) == (False, 302)
    assert [r.path for r in receiver.requests] == ["/hooks"]  # nothing at /elsewhere


def test_a_closed_connection_is_a_failed_attempt(
    receiver: WebhookReceiver, client: WebhookClient
) -> None:
    receiver.script("close")
    response = _post(client, receiver.url())
    assert response.status is None
    assert response.error
    # and the next request works on a new connection
    assert _post(client, receiver.url()).ok


def test_the_response_body_read_is_capped(receiver: WebhookReceiver) -> None:
    capped = WebhookClient(allow_private=True, max_response_bytes=2_000)
    try:
        receiver.script("big")
        response = _post(capped, receiver.url())
        assert (response.status, len(response.body)) == (200, 2_000)
        assert len(response.kept_body) == 1_024
        assert _post(capped, receiver.url()).ok  # the oversized connection was dropped
    finally:
        capped.close()


def test_a_pooled_client_reuses_its_connection_and_an_unpooled_one_does_not(
    receiver: WebhookReceiver,
) -> None:
    pooled = WebhookClient(allow_private=True)
    unpooled = WebhookClient(allow_private=True, pooled=False)
    try:
        for _ in range(10):
            assert _post(pooled, receiver.url()).ok
        assert receiver.connections == 1
        for _ in range(10):
            assert _post(unpooled, receiver.url()).ok
        assert receiver.connections == 11
    finally:
        pooled.close()
        unpooled.close()


def test_a_hostname_resolving_to_loopback_is_refused_unless_allowed(
    receiver: WebhookReceiver,
) -> None:
    # Given a public-looking hostname whose DNS answer is 127.0.0.1
    def resolve(host: str, port: int, *args: Any) -> list[tuple[Any, ...]]:
        assert host == "hooks.customer.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    url = f"http://hooks.customer.example:{receiver.port}/hooks"
    refusing = WebhookClient(allow_private=False, resolver=resolve)
    allowing = WebhookClient(allow_private=True, resolver=resolve)
    try:
        # When loopback is not allowed, the connection is refused after resolution
        refused = _post(refusing, url)
        assert refused.status is None
        assert "DestinationRefused" in (refused.error or "")
        assert "127.0.0.1" in (refused.error or "")
        assert receiver.requests == []
        # And when it is allowed, the same name reaches the receiver
        assert _post(allowing, url).ok
        assert len(receiver.requests) == 1
    finally:
        refusing.close()
        allowing.close()


def test_a_literal_private_address_is_refused(receiver: WebhookReceiver) -> None:
    refusing = WebhookClient(allow_private=False)
    try:
        response = _post(refusing, receiver.url())
        assert "DestinationRefused" in (response.error or "")
        assert receiver.requests == []
    finally:
        refusing.close()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata: link-local
        ("0.0.0.0", False),  # noqa: S104 - an address under test, nothing binds it
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_the_guard_names_every_refused_address() -> None:
    def resolve(host: str, port: int, *args: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
        ]

    with pytest.raises(DestinationRefused, match=r"10\.0\.0\.5, ::1"):
        AddressGuard(resolver=resolve).addresses("internal.example", 443)
