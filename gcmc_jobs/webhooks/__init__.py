"""Outbound webhook delivery: Standard Webhooks signatures (:mod:`.signing`), the pooled and
guarded HTTP client (:mod:`.client`) and one attempt of one delivery (:mod:`.delivery`).

What events exist and who subscribes is in :mod:`gcmc_jobs.services.webhook_events` and
:mod:`gcmc_jobs.services.webhook_endpoints`; the actors are in
:mod:`gcmc_jobs.actors.webhooks`.
"""
