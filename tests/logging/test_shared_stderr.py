"""configure_logging's default stream (the process's ``sys.stderr``) shared with a stdlib log
handler, as in a ``dramatiq`` worker process, whose ``sys.stderr`` is the pipe to its parent
that Dramatiq's own handler writes to: a line is written holding that handler's lock, so two
threads never interleave their bytes on the pipe (issue 17: a worker stalled on it)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from gcmc_jobs.logging import configure_logging
from gcmc_jobs.settings import Settings


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stdlib handler that knows when its lock is held."""

    held = 0

    def acquire(self) -> None:
        super().acquire()
        self.held += 1

    def release(self) -> None:
        self.held -= 1
        super().release()


class _Pipe(io.StringIO):
    """The shared stream: records, for each write, whether the handler's lock was held."""

    def __init__(self, handler: _Handler) -> None:
        super().__init__()
        self.handler = handler
        self.locked: list[bool] = []

    def write(self, text: str) -> int:
        self.locked.append(self.handler.held > 0)
        return super().write(text)


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Pipe]:
    handler = _Handler()
    pipe = _Pipe(handler)
    handler.setStream(pipe)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [handler])
    previous = structlog.get_config()
    try:
        yield pipe
    finally:
        structlog.configure(**previous)


@pytest.mark.parametrize("buffer_ms", [0, 60_000], ids=["unbuffered", "buffered-flush"])
def test_a_line_to_the_shared_stderr_is_written_holding_the_handlers_lock(
    shared: _Pipe, buffer_ms: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (set here: pytest's capture sets sys.stderr again between a fixture and the test)
    monkeypatch.setattr("sys.stderr", shared)
    # Given logging configured on the default stream, which a stdlib handler writes to too
    configure_logging(
        Settings(log_format="json", log_level="INFO"), cache=False, buffer_ms=buffer_ms
    )
    # When an event is logged (at WARNING: the buffered logger writes it at once)
    structlog.get_logger("t").warning("shared", n=1)
    # Then it reached the stream while the handler's lock was held, as the handler's own
    # lines do
    lines = shared.getvalue().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["shared"]
    assert shared.locked == [True] * len(shared.locked)
    assert shared.locked
