"""Webhook tests deliver to a receiver on loopback: allow it, and retry quickly."""

from __future__ import annotations

import pytest

from gcmc_jobs.settings import Settings


@pytest.fixture
def gcmc_settings(gcmc_settings: Settings) -> Settings:
    return gcmc_settings.model_copy(
        update={
            "webhook_allow_private": True,
            "webhook_read_timeout_ms": 1_000,
            "webhook_retry_base_ms": 20,
            "webhook_retry_window_ms": 60_000,
        }
    )
