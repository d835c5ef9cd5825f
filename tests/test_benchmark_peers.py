"""The pure helpers and the command line of ``benchmarks/peers.py`` (the benchmark itself is
never run by the suite: it installs the peers and takes minutes)."""

from __future__ import annotations

import pytest

from benchmarks import peers


def test_median_ignores_missing_rounds() -> None:
    assert peers.median([3.0, None, 1.0, 2.0]) == 2.0


def test_median_of_nothing_is_none() -> None:
    assert peers.median([None, None]) is None


def test_ratios_are_taken_round_by_round_and_skip_a_round_missing_either_side() -> None:
    assert peers.ratios([2.0, None, 9.0, 4.0], [1.0, 5.0, None, 8.0]) == [2.0, 0.5]


def test_window_marks_are_ten_and_ninety_percent() -> None:
    assert peers.window_marks(10_000) == (1_000, 9_000)


def test_round_order_reverses_every_other_round() -> None:
    keys = ["gcmc-jobs", "bullmq", "celery"]
    assert [peers.round_order(keys, r) for r in range(3)] == [keys, keys[::-1], keys]


def test_markdown_table_has_a_separator_row_per_column() -> None:
    table = peers.markdown_table(["a", "b"], [["1", "2"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]


def test_numbers_are_grouped_and_missing_ones_shown_as_a_dash() -> None:
    assert (peers.fmt_number(12_345.4, " µs"), peers.fmt_number(None)) == ("12,345 µs", "-")


def test_summary_marks_a_failed_system_and_gives_ratios_to_gcmc_jobs_and_the_targets() -> None:
    systems = [peers.SYSTEMS["gcmc-jobs"], peers.SYSTEMS["bullmq"], peers.SYSTEMS["celery"]]
    results = [
        peers.Result("gcmc-jobs", "W1", 0, rate=1_000.0, worker_us=900.0, redis_us=100.0),
        peers.Result("bullmq", "W1", 0, rate=2_000.0, worker_us=300.0, redis_us=90.0),
        peers.Result("celery", "W1", 0, failed="900 of 1000 processed after 200 s"),
    ]
    text = peers.summarize(results, systems, ["W1"], 1, {"W1": 1_000})
    assert "| W1: jobs/s | 1,000 | 2,000 (2.00x) | FAILED |" in text
    assert "FAILED r1: 900 of 1000 processed after 200 s" in text
    assert "W1: 0.50x (target >= 1.0x: NOT met)" in text


def test_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        peers.main(["--help"])
    assert exit_info.value.code == 0
    assert "--systems" in capsys.readouterr().out


def test_an_unknown_system_is_refused_before_anything_is_set_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        peers.main(["--systems", "sidekiq"])
    assert exit_info.value.code == 2
    assert "unknown system(s) ['sidekiq']" in capsys.readouterr().err


def test_a_round_never_runs_the_broker_alone_on_w3_and_runs_everything_else() -> None:
    plan = peers.round_plan(["bullmq", "gcmc-broker", "gcmc-jobs"], ["W1", "W3"])
    assert plan == [
        ("W1", "bullmq", True),
        ("W1", "gcmc-broker", True),
        ("W1", "gcmc-jobs", True),
        ("W3", "bullmq", True),
        ("W3", "gcmc-broker", False),
        ("W3", "gcmc-jobs", True),
    ]
    others = [s for s in peers.SYSTEMS.values() if s.key != "gcmc-broker"]
    assert all(s.applies(w) for s in others for w in peers.WORKLOADS)


def test_summary_shows_w3_as_not_applicable_to_the_broker_alone_and_its_ratio_to_bullmq() -> None:
    systems = [peers.SYSTEMS[key] for key in ("gcmc-jobs", "gcmc-broker", "bullmq")]
    results = [
        peers.Result("gcmc-jobs", "W1", 0, rate=720.0, worker_us=260.0, redis_us=50.0),
        peers.Result("gcmc-broker", "W1", 0, rate=900.0, worker_us=200.0, redis_us=50.0),
        peers.Result("bullmq", "W1", 0, rate=1_000.0, worker_us=140.0, redis_us=40.0),
        peers.Result("gcmc-jobs", "W3", 0, rate=600.0, worker_us=300.0, redis_us=60.0),
        peers.Result("bullmq", "W3", 0, rate=1_000.0, worker_us=140.0, redis_us=40.0),
    ]
    text = peers.summarize(results, systems, ["W1", "W3"], 1, {"W1": 1_000, "W3": 1_000})
    assert "| W1: jobs/s | 720 | 900 (1.25x) | 1,000 (1.39x) |" in text
    assert "| W3: jobs/s | 600 | n/a: no dedup or per-key limits | 1,000 (1.67x) |" in text
    assert "  gcmc-jobs broker alone n/a: no dedup or per-key limits" in text
    assert "FAILED" not in text
    assert (
        "W1: 0.72x (target >= 1.0x: NOT met); gcmc-jobs broker alone: 0.90x (the ceiling of "
        "work on gcmc-jobs' middleware)" in text
    )
    assert "W3: 0.60x (target >= 1.0x: NOT met)\n" in text + "\n"
    assert "W3: 0.60x (target >= 1.0x: NOT met);" not in text


def test_the_broker_alone_is_a_known_system(capsys: pytest.CaptureFixture[str]) -> None:
    # --rounds 0 is refused after the systems were accepted, before anything is set up.
    with pytest.raises(SystemExit) as exit_info:
        peers.main(["--systems", "gcmc-jobs,gcmc-broker", "--rounds", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--rounds must be at least 1" in err
    assert "unknown system" not in err
