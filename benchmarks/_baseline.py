"""The ``--baseline DIR`` harness of the in-process hook benchmarks
(``middleware_hooks.py``, ``status_hooks.py``): the same measurement on this checkout and on
``DIR`` (an earlier commit's), each in a subprocess, alternating three times."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure_or_alternate(
    script: str,
    options: Sequence[str],
    root: Path | None,
    baseline: Path | None,
    measure: Callable[[], dict[str, float]],
) -> None:
    """Print ``measure()``'s figures (µs a message) on the code of ``root`` (this checkout
    when None) when there is no ``baseline`` or this is the subprocess of one; else run
    ``script`` with ``options`` on ``baseline`` and on this checkout (``--root``), three
    times each, alternating, and print each run's line with the load average around them."""
    if root is not None or baseline is None:
        sys.path.insert(0, str((root or ROOT).resolve()))
        figures = measure()
        print("  ".join(f"{name} {us:6.2f} µs/msg" for name, us in figures.items()))
        return
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    for _ in range(3):
        for label, checkout in (("baseline", baseline), ("this", ROOT)):
            command = [sys.executable, script, *options, "--root", str(checkout)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            print(f"{label:9s} {out.stdout.strip()}", flush=True)
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
