"""Running campaigns: create, start, pause, resume, cancel, list, show and unsubscribe, for
``gcmc-jobs campaigns`` and the admin API (both thin layers over these functions).

Each takes the configured :class:`~gcmc_jobs.runtime.Runtime` (its engine, broker and
settings). Starting and resuming enqueue a new dispatcher chain
(:data:`~gcmc_jobs.actors.campaigns.dispatch_campaign`) after the status change commits, so
a chain never starts on a campaign that is not ``running``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from gcmc_jobs.actors.campaigns import campaign_sender, dispatch_campaign
from gcmc_jobs.db.enums import CampaignStatus
from gcmc_jobs.db.tables import Id
from gcmc_jobs.email.addresses import normalize_address
from gcmc_jobs.email.campaigns import check_templates
from gcmc_jobs.email.unsubscribe import UnsubscribeToken, verify_token
from gcmc_jobs.errors import InvalidUnsubscribeToken
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.services import campaigns
from gcmc_jobs.services.campaigns import CampaignInfo

__all__ = [
    "cancel_campaign",
    "create_campaign",
    "get_campaign",
    "list_campaigns",
    "pause_campaign",
    "resume_campaign",
    "start_campaign",
    "unsubscribe",
    "verify_unsubscribe",
]


def create_campaign(
    runtime: Runtime,
    *,
    tenant_id: Id,
    name: str,
    subject: str,
    body: str,
    segment: str,
    created_by: str,
    rate_per_second: float | None = None,
    start: bool = False,
) -> CampaignInfo:
    """Create a ``draft`` campaign (and :func:`start_campaign` it when ``start``).

    Everything is checked here, in the caller: the segment
    (:func:`~gcmc_jobs.services.campaigns.parse_segment`), the templates
    (:func:`~gcmc_jobs.email.campaigns.check_templates`: syntax, fields), the tenant, the
    rate; a bad one raises :class:`~gcmc_jobs.errors.InvalidPayload` and nothing is stored.
    """
    parsed = campaigns.parse_segment(segment)
    if start:
        campaign_sender(runtime.settings)  # no secret: refuse before storing anything
    check_templates(subject, body, templates_dir=runtime.settings.email_templates_dir)
    rate = (
        rate_per_second
        if rate_per_second is not None
        else runtime.settings.campaign_rate_per_second
    )
    with runtime.engine.begin() as connection:
        campaign_id = campaigns.create(
            connection,
            tenant_id=tenant_id,
            name=name,
            subject_template=subject,
            body_template=body,
            segment=parsed,
            created_by=created_by,
            rate_per_second=rate,
            now=datetime.now(UTC),
        )
    if start:
        return start_campaign(runtime, campaign_id)
    return get_campaign(runtime, campaign_id)


def start_campaign(runtime: Runtime, campaign_id: int) -> CampaignInfo:
    """``draft`` → ``running``: expand the segment into recipients (one statement) and start
    the dispatcher. Needs ``GCMC_JOBS_CAMPAIGN_SECRET`` (checked first)."""
    campaign_sender(runtime.settings)
    dispatcher = uuid.uuid4().hex
    with runtime.engine.begin() as connection:
        campaigns.start(connection, campaign_id, dispatcher=dispatcher, now=datetime.now(UTC))
    dispatch_campaign.send(campaign_id, dispatcher)
    return get_campaign(runtime, campaign_id)


def pause_campaign(runtime: Runtime, campaign_id: int) -> CampaignInfo:
    """``running`` → ``paused``: nothing more is sent until :func:`resume_campaign`."""
    with runtime.engine.begin() as connection:
        campaigns.pause(connection, campaign_id, now=datetime.now(UTC))
    return get_campaign(runtime, campaign_id)


def resume_campaign(runtime: Runtime, campaign_id: int) -> CampaignInfo:
    """``paused`` → ``running`` with a new dispatcher chain: sending continues with the
    recipients not yet mailed."""
    campaign_sender(runtime.settings)
    dispatcher = uuid.uuid4().hex
    with runtime.engine.begin() as connection:
        campaigns.resume(connection, campaign_id, dispatcher=dispatcher, now=datetime.now(UTC))
    dispatch_campaign.send(campaign_id, dispatcher)
    return get_campaign(runtime, campaign_id)


def cancel_campaign(runtime: Runtime, campaign_id: int) -> CampaignInfo:
    """Stop the campaign for good: the recipients not yet mailed never are."""
    with runtime.engine.begin() as connection:
        campaigns.cancel(connection, campaign_id, now=datetime.now(UTC))
    return get_campaign(runtime, campaign_id)


def get_campaign(
    runtime: Runtime, campaign_id: int, *, tenant_id: Id | None = None
) -> CampaignInfo:
    """The campaign and its progress; :class:`~gcmc_jobs.errors.CampaignNotFound` if none."""
    with runtime.engine.connect() as connection:
        return campaigns.get(connection, campaign_id, tenant_id=tenant_id)


def list_campaigns(
    runtime: Runtime,
    *,
    tenant_id: Id | None = None,
    status: CampaignStatus | None = None,
    limit: int = 100,
) -> list[CampaignInfo]:
    """Campaigns, newest first, with their progress."""
    with runtime.engine.connect() as connection:
        return campaigns.list_campaigns(connection, tenant_id=tenant_id, status=status, limit=limit)


def verify_unsubscribe(runtime: Runtime, token: str) -> UnsubscribeToken:
    """What an unsubscribe ``token`` names; :class:`~gcmc_jobs.errors.InvalidUnsubscribeToken`
    when it was not signed with ``GCMC_JOBS_CAMPAIGN_SECRET`` or was altered."""
    secret = campaign_sender(runtime.settings).secret
    found = verify_token(secret, token)
    normalize_address(found.address)  # what we signed was normalised; a sanity check
    return found


def unsubscribe(runtime: Runtime, token: str) -> tuple[UnsubscribeToken, bool]:
    """Record the opt-out a valid ``token`` names (idempotent): returns what it names and
    whether the opt-out is new. The tenant's later campaigns, and its running ones, skip
    the address; transactional mail is not affected."""
    found = verify_unsubscribe(runtime, token)
    tenant_id: Id = found.tenant_id
    if runtime.tables.mapping.id_type == "integer":
        if not found.tenant_id.isdigit():  # signed by us, so never; refuse rather than guess
            raise InvalidUnsubscribeToken("this unsubscribe link is not valid")
        tenant_id = int(found.tenant_id)
    with runtime.engine.begin() as connection:
        new = campaigns.record_unsubscribe(
            connection,
            tenant_id=tenant_id,
            address=found.address,
            campaign_id=found.campaign_id,
            now=datetime.now(UTC),
        )
    return found, new
