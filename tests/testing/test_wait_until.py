"""gcmc_jobs.testing.wait_until: bounded polling that says what it waited for."""

from __future__ import annotations

import pytest

from gcmc_jobs.testing import wait_until


def test_it_returns_the_first_truthy_value() -> None:
    values = iter([None, 0, [], [3]])
    assert wait_until(lambda: next(values), what="a list", interval_s=0) == [3]


def test_a_timeout_names_what_was_awaited_the_last_value_and_the_diagnosis() -> None:
    with pytest.raises(AssertionError) as failed:
        wait_until(
            lambda: 0,
            what="the answer",
            timeout_s=0,
            diagnose=lambda: "worker log: nothing happened",
        )
    assert str(failed.value).startswith("timed out after 0 s waiting for the answer (last: 0)")
    assert str(failed.value).endswith("\nworker log: nothing happened")


def test_an_error_of_the_condition_is_retried_and_chained_on_timeout() -> None:
    calls: list[int] = []

    def flaky() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("server restarting")
        return True

    assert wait_until(flaky, what="the server", interval_s=0) is True

    with pytest.raises(AssertionError, match="ConnectionError") as failed:
        wait_until(lambda: (_ for _ in ()).throw(ConnectionError("down")), what="x", timeout_s=0)
    assert isinstance(failed.value.__cause__, ConnectionError)


def test_an_assertion_error_of_the_condition_ends_the_wait_at_once() -> None:
    calls: list[int] = []

    def gone() -> bool:
        calls.append(1)
        raise AssertionError("the worker exited")

    with pytest.raises(AssertionError, match="the worker exited"):
        wait_until(gone, what="the worker", timeout_s=60)
    assert calls == [1]
