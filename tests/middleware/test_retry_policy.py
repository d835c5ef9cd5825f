"""Every package actor states its retry policy, and the README's table says the same."""

from __future__ import annotations

from pathlib import Path

import gcmc_jobs.actors  # noqa: F401  (declares every package actor)
from gcmc_jobs import brokers as broker

README = Path(__file__).resolve().parents[2] / "README.md"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return ", ".join(f"`{error.__name__}`" for error in value)
    return str(value)


def _readme_rows() -> dict[str, list[str]]:
    text = README.read_text().split("## Retry policy", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 7:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_package_actor_states_its_policy() -> None:
    for name, declared in broker.unconfigured.actors.items():
        options = declared.options
        assert "max_retries" in options, name
        assert "time_limit" in options, name
        if options["max_retries"]:
            for option in ("min_backoff", "max_backoff", "throws"):
                assert option in options, f"{name} does not state {option}"


def test_the_readme_table_lists_every_actors_policy() -> None:
    rows = _readme_rows()
    for name, declared in broker.unconfigured.actors.items():
        options = declared.options
        expected = [
            f"`{declared.queue_name}`",
            *(
                _cell(options.get(key))
                for key in ("max_retries", "min_backoff", "max_backoff", "time_limit", "throws")
            ),
        ]
        assert rows.get(name) == expected, f"README retry policy row of {name}"
