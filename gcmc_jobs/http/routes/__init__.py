"""The admin application's routes, one module per resource.

==================  ===========================================================================
module              paths
==================  ===========================================================================
``health``          ``/health/live``, ``/health/ready`` (open probes), ``/api/health``
``metrics``         ``/metrics``
``queues``          ``/api/queues``, ``/api/queues/{queue}/pause``, ``…/resume``
``dead_letters``    ``/api/dead-letters``, ``/api/dead-letters/{id}``, ``…/replay``, ``…/purge``
``daily_jobs``      ``/api/runs``, ``/api/schedules``, ``/api/jobs/{job}/run``
``messages``        ``/api/messages/{message_id}``
``sms``             ``/api/sms/opt-ins`` (GET, PUT, DELETE)
``suppressions``    ``/api/suppressions``, ``…/{address}``, ``…/import``, ``…/changes``
``email_hooks``     ``/hooks/email/{provider}`` (signed by the provider, no admin token)
``mail_circuit``    ``/api/mail-circuit``, ``/api/mail-circuit/reset``
``webhooks``        ``/api/webhooks/endpoints`` (``…/{id}``, ``…/enable``, ``…/disable``,
                    ``…/test``), ``/api/webhooks/deliveries`` (``…/{id}/attempts``,
                    ``…/{id}/replay``, ``…/replay``)
``campaigns``       ``/api/campaigns``, ``/api/campaigns/{id}``, ``…/start|pause|resume|cancel``
``unsubscribe``     ``/unsubscribe/{token}`` (public: the signed token authorises it)
==================  ===========================================================================

Route functions parse, call one function of the layers below (:mod:`gcmc_jobs.ops`,
:mod:`gcmc_jobs.services`, :mod:`gcmc_jobs.scheduling`) and shape the answer: no SQL here.
"""

from __future__ import annotations

__all__: list[str] = []
