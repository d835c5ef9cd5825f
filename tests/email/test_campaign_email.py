"""Campaign email without a database: the signed unsubscribe token, the RFC 8058 headers,
and the operator's templates rendered as data in the sandbox."""

from __future__ import annotations

import pytest

from gcmc_jobs.email.campaigns import build_campaign_mime, check_templates, render_campaign
from gcmc_jobs.email.unsubscribe import list_unsubscribe_headers, make_token, verify_token
from gcmc_jobs.errors import InvalidPayload, InvalidUnsubscribeToken

SECRET = "unit-test-secret-0123456789"
CONTEXT = {
    "recipient_name": "<script>alert(1)</script> {{ 7 * 7 }}",
    "recipient_email": "ann@example.com",
    "tenant_name": "Acme CPA",
    "campaign_name": "News",
    "portal_url": "https://portal.example",
    "support_email": "help@example.com",
    "unsubscribe_url": "https://jobs.example/unsubscribe/TOKEN",
}


def test_a_token_names_its_tenant_campaign_and_address_and_only_verifies_with_the_secret() -> None:
    token = make_token(SECRET, tenant_id="ckabc", campaign_id=7, address="ann@example.com")
    found = verify_token(SECRET, token)
    assert (found.tenant_id, found.campaign_id, found.address) == ("ckabc", 7, "ann@example.com")
    with pytest.raises(InvalidUnsubscribeToken):
        verify_token("another-secret-0123456789", token)
    # Each part is signed: another address, tenant or campaign with this signature is refused
    signature = token.split(".")[1]
    for tenant, campaign, address in (
        ("ckabc", 7, "bob@example.com"),
        ("ckxyz", 7, "ann@example.com"),
        ("ckabc", 8, "ann@example.com"),
    ):
        other = make_token(SECRET, tenant_id=tenant, campaign_id=campaign, address=address)
        assert other != token
        with pytest.raises(InvalidUnsubscribeToken):
            verify_token(SECRET, f"{other.split('.')[0]}.{signature}")
    for bad in ("", ".", "a.b.c", "x" * 3000, token + "A", "%%%.%%%"):
        with pytest.raises(InvalidUnsubscribeToken):
            verify_token(SECRET, bad)


def test_the_headers_are_rfc_8058_one_click_with_an_optional_mailto() -> None:
    url = "https://jobs.example/unsubscribe/abc.def"
    assert list_unsubscribe_headers(url) == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    with_mailto = list_unsubscribe_headers(url, "unsubscribe@acme.example")
    assert with_mailto["List-Unsubscribe"] == (
        f"<{url}>, <mailto:unsubscribe@acme.example?subject=unsubscribe%20abc.def>"
    )
    rendered = render_campaign("Hi {{ recipient_name }}", "Body", CONTEXT)
    message = build_campaign_mime(
        rendered,
        to="ann@example.com",
        sender="Acme <no-reply@acme.example>",
        dedup_key="campaign:7:ann@example.com",
        unsubscribe_url=url,
        unsubscribe_mailto="unsubscribe@acme.example",
    )
    assert message["List-Unsubscribe"] == with_mailto["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Precedence"] == "bulk"


def test_values_are_data_escaped_in_html_and_never_evaluated() -> None:
    rendered = render_campaign(
        "News for {{ recipient_name }}", "Hello {{ recipient_name }}\n\nBye", CONTEXT
    )
    assert "{{ 7 * 7 }}" in rendered.subject
    assert "49" not in rendered.subject
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text
    assert CONTEXT["unsubscribe_url"] in rendered.html
    assert CONTEXT["unsubscribe_url"] in rendered.text


@pytest.mark.parametrize(
    ("subject", "body", "message"),
    [
        ("Hi", "{{ user.password }}", "unknown field"),
        ("Hi", "{{ ''.__class__.__mro__ }}", "unsafe|access"),
        ("{% for %}", "Body", "line 1"),
        ("  ", "Body", "empty"),
        ("Hi", "\x00", "NUL"),
    ],
)
def test_templates_that_cannot_render_for_everyone_are_refused(
    subject: str, body: str, message: str
) -> None:
    with pytest.raises(InvalidPayload, match=message):
        check_templates(subject, body)
