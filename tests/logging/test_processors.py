"""The processors every event goes through (gcmc_jobs.logging.processors)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcmc_jobs.logging.processors import UtcTimestamp


def _expected(ns: int) -> str:
    # The time truncated to the microsecond, in ISO 8601 with a "Z".
    second, micro = divmod(ns // 1000, 1_000_000)
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{micro:06d}Z"


@given(
    times=st.lists(
        st.one_of(
            st.integers(1_600_000_000 * 10**9, 1_900_000_000 * 10**9),
            # around a second's edges: its first and last microsecond, and the next second
            st.integers(1_700_000_000, 1_700_000_003).flatmap(
                lambda s: st.sampled_from(
                    [s * 10**9, s * 10**9 + 999, s * 10**9 + 999_999_999, s * 10**9 - 1]
                )
            ),
        ),
        min_size=1,
        max_size=8,
    )
)
@settings(max_examples=200, deadline=None)
def test_the_timestamp_is_the_utc_time_to_the_microsecond_whatever_the_times_before(
    times: list[int],
) -> None:
    # Given a clock read at times in any order (the same second again, the next one, an
    # earlier one: the cached second must never be reused for another)
    stamper = UtcTimestamp()
    with pytest.MonkeyPatch.context() as patch:
        for ns in times:
            patch.setattr(time, "time_ns", lambda ns=ns: ns)
            # Then each timestamp is that time's, as TimeStamper(fmt="iso", utc=True)
            # writes it with the microseconds always present
            assert stamper.now() == _expected(ns)
            assert stamper(None, "info", {})["timestamp"] == _expected(ns)
