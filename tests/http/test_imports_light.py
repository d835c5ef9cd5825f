"""The admin API is an optional extra: importing gcmc-jobs never imports FastAPI."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_its_actors_and_cli_does_not_import_fastapi() -> None:
    probe = (
        "import sys, gcmc_jobs, gcmc_jobs.actors, gcmc_jobs.cli, gcmc_jobs.ops.health;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette',"
        " 'uvicorn')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
