"""The admin HTTP application: health probes, Prometheus metrics, a JSON API and a dashboard.

Needs the ``[server]`` extra (FastAPI, uvicorn); importing :mod:`gcmc_jobs` never imports it.
A host application mounts it (``host.mount("/jobs", create_app(settings))``), or
``gcmc-jobs serve`` runs it alone.
"""

from __future__ import annotations

from gcmc_jobs.http.app import create_app

__all__ = ["create_app"]
