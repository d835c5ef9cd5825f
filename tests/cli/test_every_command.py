"""Every command of ``gcmc-jobs`` under each bad or unreachable setting: one line on stderr
that names the setting (its secret masked), a non-zero exit code, never a traceback; the
traceback only with ``--debug``.

The commands are enumerated from the Typer application, so a new one is covered as soon as
it is registered (one with a required argument needs its line in :data:`ARGUMENTS`).
Unreachable services are closed loopback ports: refused at once, nothing waits on a timeout.
``serve`` runs until stopped: uvicorn's server is replaced by a look at the app it was given
(its readiness probe and health report), as a browser would see it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer.main
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from gcmc_jobs.bootstrap import configured
from gcmc_jobs.cli import app
from gcmc_jobs.cli._errors import EXIT_SETTING, EXIT_UNAVAILABLE
from gcmc_jobs.db.engine import make_engine, session_scope
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import Role
from gcmc_jobs.middleware import DeadLetterRecord, SqlDeadLetterStore
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import free_port
from tests import factories as f

SECRET = "s3cret-pw"
TOKEN = "admin-token-of-the-test"
CLOSED = free_port()  # nothing listens there: a connection is refused at once


def all_commands() -> list[str]:
    """Every command of the application, as the words that invoke it (``dead-letters list``)."""
    found: list[str] = []

    def walk(command: Any, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in sorted(children.items()):
                walk(child, [*path, name])
        else:
            found.append(" ".join(path))

    walk(typer.main.get_command(app), [])
    return found


def required_parameters(words: str) -> list[str]:
    command: Any = typer.main.get_command(app)
    for word in words.split():
        command = command.commands[word]
    return [param.name for param in command.params if param.required]


#: The arguments each command runs with: its required ones, and small sizes. ``{tmp}`` is the
#: test's directory.
ARGUMENTS: dict[str, list[str]] = {
    "bounces ingest": ["{tmp}"],
    "suppressions add": ["someone@example.com"],
    "suppressions remove": ["someone@example.com"],
    "suppressions import": [os.devnull],  # an empty CSV
    # 999999: no such campaign (create runs too, and makes campaigns from 1 on)
    "campaigns cancel": ["999999"],
    "campaigns create": [
        *("--tenant", "1", "--name", "News", "--subject", "News", "--body", "Hello"),
        *("--segment", "clients"),
    ],
    "campaigns pause": ["999999"],
    "campaigns resume": ["999999"],
    "campaigns show": ["999999"],
    "campaigns start": ["999999"],
    "dead-letters replay": ["--all-matching", "--again"],
    "dead-letters show": ["1"],
    "demo": ["--tenants", "1", "--clients-per-tenant", "1"],
    "email preview": ["welcome", "--out", "{tmp}/preview.html"],
    "messages cancel": ["gcmc_email", "00000000-0000-4000-8000-000000000000"],
    "messages list": ["gcmc_email"],
    "messages promote": ["gcmc_email", "--all"],
    "messages show": ["gcmc_email", "00000000-0000-4000-8000-000000000000"],
    "export": ["1", "--what", "clients"],
    "import": ["999", "{tmp}/clients.csv", "--what", "clients"],
    "pause": ["gcmc_email"],
    "resume": ["gcmc_email"],
    "status": ["00000000-0000-4000-8000-000000000000"],
    "report": ["1", "--period", "2026-05"],
    "run": ["compliance_refresh"],
    "seed": ["--tenants", "1", "--clients-per-tenant", "1"],
    "sms opt-in": ["1", "1", "+14155552671"],
    "sms opt-out": ["1", "1"],
    "sms suppress": ["+14155552671"],
    "sms unsuppress": ["+14155552671"],
    "sms test": ["+14155552671"],
    "tick": ["--now", "2026-06-01T12:00:00+00:00"],
    "webhooks add": ["1", "https://hooks.example/x"],
    "webhooks attempts": ["999999"],
    "webhooks disable": ["999999"],
    "webhooks enable": ["999999"],
    "webhooks remove": ["999999"],
    "webhooks replay": ["--all-failed"],
    "webhooks test": ["999999"],
}


@dataclass(frozen=True)
class Config:
    """One bad setting on top of a working configuration, and the variable it sets."""

    variable: str
    value: str
    #: The exit code when a command fails on it.
    code: int


CONFIGS: dict[str, Config] = {
    "garbage database URL": Config("GCMC_JOBS_DATABASE_URL", f"garbage-{SECRET}", EXIT_SETTING),
    "unreachable database": Config(
        "GCMC_JOBS_DATABASE_URL",
        f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{CLOSED}/gcmc",
        EXIT_UNAVAILABLE,
    ),
    "garbage broker URL": Config("GCMC_JOBS_BROKER_URL", f"garbage-{SECRET}", EXIT_SETTING),
    "unreachable broker": Config(
        "GCMC_JOBS_BROKER_URL", f"redis://:{SECRET}@127.0.0.1:{CLOSED}/0", EXIT_UNAVAILABLE
    ),
    "unreachable RabbitMQ broker": Config(
        "GCMC_JOBS_BROKER_URL", f"amqp://guest:{SECRET}@127.0.0.1:{CLOSED}/", EXIT_UNAVAILABLE
    ),
    "unreachable Redis of the stores": Config(
        "GCMC_JOBS_REDIS_URL", f"redis://:{SECRET}@127.0.0.1:{CLOSED}/0", EXIT_UNAVAILABLE
    ),
    "garbage email URL": Config("GCMC_JOBS_EMAIL_URL", f"garbage-{SECRET}", EXIT_SETTING),
}

UNREACHABLE = {name for name, config in CONFIGS.items() if config.code == EXIT_UNAVAILABLE}
#: Where the database works and the broker or the stores' Redis does not.
NO_REDIS = {"unreachable broker", "unreachable RabbitMQ broker", "unreachable Redis of the stores"}

#: The commands that need nothing the configuration breaks, and so succeed under it; under
#: every other configuration a command fails.
SUCCEEDS: dict[str, set[str]] = {
    # Reads only the packaged registry, no setting.
    "email kinds": set(CONFIGS),
    # Valid settings, and no connection: prints them, renders templates.
    "settings": UNREACHABLE,
    "email preview": UNREACHABLE,
    # The database alone.
    "campaigns create": NO_REDIS,  # a draft: nothing is sent
    "campaigns list": NO_REDIS,
    "db check": NO_REDIS,
    "db upgrade": NO_REDIS,
    "dead-letters list": NO_REDIS,
    "dead-letters purge": NO_REDIS,
    "dead-letters show": NO_REDIS,
    "retention run": NO_REDIS,
    "export": NO_REDIS,
    "run": NO_REDIS,  # compliance_refresh runs inline and sends nothing
    "reports": NO_REDIS,
    "runs": NO_REDIS,
    "schedules": NO_REDIS,
    "seed": NO_REDIS,
    "sms list": NO_REDIS,
    "sms opt-in": NO_REDIS,
    "sms opt-out": NO_REDIS,
    "sms suppress": NO_REDIS,
    "sms suppressions": NO_REDIS,
    "sms unsuppress": NO_REDIS,
    # Valid settings and the SMS transport (memory:// here) alone.
    "sms test": UNREACHABLE,
    "bounces ingest": NO_REDIS,
    "suppressions add": NO_REDIS,
    "suppressions history": NO_REDIS,
    "suppressions import": NO_REDIS,
    "suppressions list": NO_REDIS,
    "suppressions remove": NO_REDIS,
    # The stores' Redis (GCMC_JOBS_REDIS_URL), and a Redis broker's list of workers.
    "pause": {"unreachable database", "unreachable RabbitMQ broker"},
    # On a Redis broker it reads only the Redis settings (start-up, cli/_env.py).
    "queues": {"unreachable database", "garbage database URL", "garbage email URL"},
    "resume": {"unreachable database", "unreachable RabbitMQ broker"},
    # The stores' Redis alone.
    "mail-circuit": {"unreachable database", "unreachable broker", "unreachable RabbitMQ broker"},
    # Its refresh_compliance message has no deduplication key: the stores are not used.
    "dead-letters replay": {"unreachable Redis of the stores"},
    # The broker's Redis alone (the stores only for what was cancelled or promoted).
    "messages list": {"unreachable database", "unreachable Redis of the stores"},
    "messages promote": {"unreachable database", "unreachable Redis of the stores"},
    # The chain's first message goes to the broker's Redis; its dedup key's claim fails with
    # the stores' Redis, which Dramatiq logs and ignores at enqueue (the worker claims it).
    "report": {"unreachable Redis of the stores"},
    # The database alone (nothing failed to replay: no message sent).
    "webhooks add": NO_REDIS,
    "webhooks deliveries": NO_REDIS,
    "webhooks list": NO_REDIS,
    "webhooks replay": NO_REDIS,
}

#: The commands that work under these configurations but find nothing by the id they are
#: given (each test has a fresh namespace): they say so and exit 1.
ANSWERS_UNKNOWN: dict[str, set[str]] = {
    # The stores' Redis alone (GCMC_JOBS_REDIS_URL is set in the working configuration).
    "status": {"unreachable database", "unreachable broker", "unreachable RabbitMQ broker"},
    # The broker's Redis: no message has that id in the queue.
    "messages cancel": {"unreachable database", "unreachable Redis of the stores"},
    "messages show": {"unreachable database", "unreachable Redis of the stores"},
    # The database alone: tenant 999 does not exist.
    "import": NO_REDIS,
    # The database alone: no webhook endpoint or delivery has that id.
    "webhooks attempts": NO_REDIS,
    "webhooks disable": NO_REDIS,
    "webhooks enable": NO_REDIS,
    "webhooks remove": NO_REDIS,
    "webhooks test": NO_REDIS,
    # The database alone: the campaign is looked up first.
    **dict.fromkeys(
        [f"campaigns {c}" for c in ("cancel", "pause", "resume", "show", "start")], NO_REDIS
    ),
}


@pytest.fixture(scope="module")
def working_env(
    tmp_path_factory: pytest.TempPathFactory, gcmc_redis_url: str, gcmc_namespace: str
) -> Iterator[dict[str, str]]:
    """A working configuration: a migrated SQLite file with one tenant and one dead letter,
    the shared Redis (as broker and stores) under a namespace of this module."""
    directory = tmp_path_factory.mktemp("every_command")
    engine = make_engine(f"sqlite:///{directory / 'gcmc.sqlite3'}")
    upgrade(engine)
    _fill(engine)
    try:
        yield {
            "GCMC_JOBS_DATABASE_URL": str(engine.url),
            "GCMC_JOBS_BROKER_URL": gcmc_redis_url,
            "GCMC_JOBS_REDIS_URL": gcmc_redis_url,
            "GCMC_JOBS_NAMESPACE": f"{gcmc_namespace}:every",
            "GCMC_JOBS_EMAIL_URL": "memory://",
            "GCMC_JOBS_SMS_URL": "memory://",
            "GCMC_JOBS_LOG_LEVEL": "WARNING",
            "GCMC_JOBS_HEALTH_TIMEOUT_MS": "1000",
            "GCMC_JOBS_ADMIN_TOKEN": TOKEN,
            "GCMC_JOBS_CAMPAIGN_SECRET": "every-command-campaign-secret",
        }
    finally:
        engine.dispose()


def _fill(engine: Engine) -> None:
    with session_scope(engine) as session:
        tenant = f.tenant(session, "Acme CPA")
        f.member(session, tenant, Role.OWNER)
        f.client(session, tenant)
    SqlDeadLetterStore(engine).add(
        DeadLetterRecord(
            message_id="msg-1",
            queue="gcmc_compliance",
            actor="refresh_compliance",
            args=[1],
            kwargs={},
            options={},
            error_type="builtins.RuntimeError",
            error="boom",
            traceback="(the traceback the worker stored)",
            attempts=6,
            failed_at=datetime.now(UTC),
        )
    )


def _environment(
    monkeypatch: pytest.MonkeyPatch, working: dict[str, str], config: Config
) -> dict[str, str]:
    env = {**working, config.variable: config.value}
    for name in list(os.environ):
        if name.startswith("GCMC_JOBS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What a server started by a command answered: uvicorn's blocking ``run`` is replaced by
    requests to the app it was given, the readiness probe and the full health report."""
    answers: dict[str, Any] = {}

    def look_at(app: Any, **options: Any) -> None:
        client = TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})
        # configured() here, not the app's own configure() on first request, so that the
        # process is left as it was found.
        with configured(Settings()):
            answers["ready"] = client.get("/health/ready")
            answers["health"] = client.get("/api/health")

    monkeypatch.setattr(uvicorn, "run", look_at)
    return answers


def _arguments(command: str, tmp_path: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp_path)) for a in ARGUMENTS.get(command, [])]


def test_every_command_with_a_required_argument_has_its_arguments_here() -> None:
    missing = [c for c in all_commands() if required_parameters(c) and c not in ARGUMENTS]
    assert missing == [], f"add the arguments of {missing} to ARGUMENTS"


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("command", all_commands())
def test_a_bad_setting_is_one_line_naming_it_never_a_traceback(
    command: str,
    config_name: str,
    working_env: dict[str, str],
    served: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    config = CONFIGS[config_name]
    env = _environment(monkeypatch, working_env, config)
    # A namespace of its own: what one command claimed in Redis (a tick's deduplication keys)
    # never changes what another does.
    monkeypatch.setenv("GCMC_JOBS_NAMESPACE", f"{env['GCMC_JOBS_NAMESPACE']}:{uuid.uuid4().hex}")
    monkeypatch.chdir(tmp_path)
    # The command's own logging, as in a terminal: pytest's log capture off the root logger,
    # so what libraries log (pika's connection errors...) reaches the command's stderr.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])

    result = CliRunner().invoke(app, [*command.split(), *_arguments(command, tmp_path)])

    output = result.output
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert SECRET not in output
    if config_name in SUCCEEDS.get(command, set()):
        assert result.exit_code == 0, output
        return
    if config_name in ANSWERS_UNKNOWN.get(command, set()):
        assert result.exit_code == 1, output
        assert "unknown" in output
        return
    if command == "serve" and config.code == EXIT_UNAVAILABLE:
        # It serves, and answers that it is not ready, the health report saying why.
        assert result.exit_code == 0, output
        assert served["ready"].status_code == 503
        assert "unhealthy" in served["ready"].json()["checks"].values()
        assert config.variable in served["health"].text
        assert SECRET not in served["health"].text
        return
    assert config.variable in output, output
    if command == "health" and config.code == EXIT_UNAVAILABLE:
        # It reports the unreachable part unhealthy, and why, instead of failing.
        report = json.loads(result.stdout)
        assert result.exit_code == 1, output
        assert report["status"] == "unhealthy"
        return
    assert result.exit_code == config.code, output
    # One error line, the last one (a command may have logged before it failed).
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert config.variable in errors[0]
    assert result.stderr.splitlines()[-1] == errors[0], output


def test_debug_prints_the_traceback_before_the_one_line(
    working_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _environment(monkeypatch, working_env, CONFIGS["unreachable database"])

    quiet = CliRunner().invoke(app, ["runs"])
    loud = CliRunner().invoke(app, ["--debug", "runs"])

    assert "Traceback" not in quiet.output
    assert "Traceback (most recent call last)" in loud.stderr
    assert "psycopg.OperationalError" in loud.stderr
    assert loud.exit_code == quiet.exit_code == EXIT_UNAVAILABLE
    assert loud.stderr.splitlines()[-1] == quiet.stderr.strip()
    assert SECRET not in loud.output


def test_the_installed_command_prints_one_line_and_no_traceback(
    working_env: dict[str, str],
) -> None:
    # The console script itself, not Typer's test runner: no pretty traceback of Typer's.
    config = CONFIGS["garbage database URL"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
    env.update({**working_env, config.variable: config.value})
    script = Path(sys.executable).with_name("gcmc-jobs")

    done = subprocess.run(
        [str(script), "runs"], env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == EXIT_SETTING
    assert done.stdout == ""
    assert done.stderr.startswith("error: GCMC_JOBS_DATABASE_URL is not a database URL")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert SECRET not in done.stderr
