"""The commands of ``gcmc-jobs``, by name: the module that registers each, and the summary
``gcmc-jobs --help`` lists for it, in the order it lists them.

The root group (:class:`gcmc_jobs.cli._app.RootGroup`) imports a command's module and
builds the command only when a run asks for it (click's lazy-group pattern): ``gcmc-jobs
--help`` lists every command from this table without importing or building any, and
``gcmc-jobs queues`` builds ``queues`` alone. ``tests/cli/test_command_table.py`` checks
the table against the real commands (names, order, summaries): a new command fails it
until its line is added here.
"""

from __future__ import annotations

__all__ = ["COMMANDS"]

#: name -> (module under ``gcmc_jobs.cli``, first paragraph of the command's help).
#: Commands first, then groups, each in the order their modules register them.
COMMANDS: dict[str, tuple[str, str]] = {
    "settings": (
        "config",
        "Show every GCMC_JOBS_* setting with its current value (secrets masked) and meaning.",
    ),
    "demo": (
        "demo",
        "Seed a small data set and run the jobs through the real actors and an in-process worker.",
    ),
    "mail-circuit": (
        "mail_circuit",
        "Show the mail server's circuit breaker, the state every worker shares: closed (email\n"
        "flows), open (email held while the server fails; probed with backoff) or half open\n"
        "(password resets first). Needs Redis (GCMC_JOBS_REDIS_URL, or a redis:// broker).",
    ),
    "queues": (
        "ops",
        "Show each queue: ready, delayed, in flight, broker dead-letter queue, oldest age.",
    ),
    "pause": (
        "ops",
        "Pause QUEUE on every worker: its messages wait, none lost, none run, until resumed.\n"
        "Needs Redis (GCMC_JOBS_REDIS_URL, or a redis:// broker).",
    ),
    "resume": (
        "ops",
        "Resume QUEUE: its waiting messages run again within GCMC_JOBS_PAUSE_DELAY_MS.\n"
        "Needs Redis (GCMC_JOBS_REDIS_URL, or a redis:// broker).",
    ),
    "health": (
        "ops",
        "Print the health report as JSON; exit 1 when unhealthy (warnings exit 0).",
    ),
    "serve": (
        "ops",
        "Run the admin HTTP API and dashboard (needs the server extra of gcmc-jobs).",
    ),
    "run": (
        "schedule",
        "Run a daily job now for every active tenant (or one), under the run ledger.",
    ),
    "tick": (
        "schedule",
        "Run one scheduler tick: every daily run due at --now that has not run yet.",
    ),
    "schedules": (
        "schedule",
        "Each daily job's next run per tenant, in the tenant's local time and in UTC.",
    ),
    "runs": (
        "schedule",
        "The run ledger: what ran, for whom, on which local date, how it went.",
    ),
    "report": (
        "reports",
        "Make a tenant's monthly compliance report now: aggregate, render the PDF and CSV,\n"
        "email them to the tenant's owners and admins, record it (one job per step).",
    ),
    "reports": (
        "reports",
        "List the monthly compliance reports, newest month first: status, files, recipients.",
    ),
    "seed": (
        "seed",
        "Add tenants, members, clients, documents and filings to GCMC_JOBS_DATABASE_URL.",
    ),
    "status": (
        "status",
        "Show a message's state (enqueued, delayed, running, retrying, succeeded, failed,\n"
        "dead_lettered), attempts, times and last error. Exit 1 when unknown: never sent, or\n"
        "its record expired (GCMC_JOBS_STATUS_TTL_MS). Needs Redis (GCMC_JOBS_REDIS_URL, or a\n"
        "redis:// broker).",
    ),
    "export": (
        "transfer",
        "Export one tenant's clients, compliance scores or filings as CSV.",
    ),
    "import": (
        "transfer",
        "Import clients, documents or filings of one tenant from a CSV file.",
    ),
    "bounces": (
        "bounces",
        "Bounces and complaints: feed them to the suppression list.",
    ),
    "suppressions": (
        "bounces",
        "The suppression list: addresses never mailed again (hard bounces, complaints, "
        "repeated soft bounces, manual blocks). Every change is recorded with its actor.",
    ),
    "campaigns": (
        "campaigns",
        "Campaigns: one templated email to a segment of a tenant (every active client, or "
        "staff by role), paced below transactional mail, with one-click unsubscribe.",
    ),
    "db": (
        "db",
        "Manage the database schema (Alembic migrations shipped inside).",
    ),
    "dead-letters": (
        "dead_letters",
        "Messages that failed for good: inspect them, replay them with fresh retries, purge.",
    ),
    "email": (
        "email",
        "Transactional email: preview the templates of each kind.",
    ),
    "messages": (
        "messages",
        "Messages waiting in a queue (ready or delayed): list, show, cancel, promote to ready. "
        "Redis only: RabbitMQ cannot read a queued message without consuming it (gcmc-jobs "
        "queues shows its counts).",
    ),
    "outbox": (
        "outbox",
        "The transactional outbox (gcmc_jobs.outbox).",
    ),
    "retention": (
        "retention",
        "Retention: delete expired rows (GCMC_JOBS_RETENTION_*; the daily `retention` job "
        "does it per tenant).",
    ),
    "sms": (
        "sms",
        "The SMS channel: opt users in to alerts by SMS, list and remove opt-ins, suppress "
        "numbers, send a test SMS.",
    ),
    "webhooks": (
        "webhooks",
        "Outbound webhooks: a tenant's endpoints (signed Standard Webhooks requests), their "
        "deliveries and attempts, replay.",
    ),
}
