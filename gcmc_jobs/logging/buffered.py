"""The worker's log writer: rendered lines written in batches, warnings at once."""

from __future__ import annotations

import atexit
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["BufferedLineLogger", "SharedLoggerFactory"]


class BufferedLineLogger:
    """A structlog logger writing rendered lines to ``stream`` in batches.

    Lines below WARNING wait up to ``buffer_ms`` (a daemon thread writes them in one call);
    a WARNING or worse is written at once with everything before it, and the buffer is
    written at exit. Under ``dramatiq`` every ``write`` of a worker process is one message on
    a pipe that the parent process reads, decodes and flushes line by line: batching them
    keeps per-message events from costing the worker more than the message itself.
    """

    def __init__(self, stream: TextIO, *, buffer_ms: int) -> None:
        self.stream = stream
        self.buffer_ms = buffer_ms
        # A deque: appending to it is atomic, so a line costs no lock (half of what
        # buffering it cost); a flush takes the lines that are there when it starts.
        self._lines: deque[str] = deque()
        self._lock = threading.Lock()  # one flush (or start of the writer) at a time
        self._thread: threading.Thread | None = None
        atexit.register(self.flush)

    def _buffer(self, message: str) -> None:
        self._lines.append(message + "\n")
        if self._thread is None:
            self._start()

    def appender(self) -> Callable[[str], None]:
        """What the buffering methods (:attr:`BUFFERED`) do with a line, for a caller whose
        lines end with their newline already (``"…\\n"``): the buffer's own ``append``,
        which spares each line a method call and a copy of it with its newline. Starts the
        writer thread if it has not started."""
        if self._thread is None:
            self._start()
        return self._lines.append

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="gcmc-jobs-log-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.buffer_ms / 1000)
            self.flush()

    def flush(self) -> None:
        """Write every buffered line now, in one call."""
        with self._lock:
            lines = self._lines
            count = len(lines)
            if count:
                # Taken from the left, as many as there were: those appended meanwhile
                # (after these, in their order) wait for the next flush.
                popleft = lines.popleft
                self.stream.write("".join([popleft() for _ in range(count)]))
                self.stream.flush()

    def _now(self, message: str) -> None:
        self._buffer(message)
        self.flush()

    #: The methods that buffer a line (the others write it at once).
    BUFFERED = frozenset({"debug", "info", "msg", "log"})

    debug = info = msg = log = _buffer
    warning = warn = error = err = critical = fatal = exception = failure = _now


class SharedLoggerFactory:
    """A structlog logger factory handing out one :class:`BufferedLineLogger` to every
    logger, so that all of a process's lines share one buffer."""

    def __init__(self, logger: BufferedLineLogger) -> None:
        self.logger = logger

    def __call__(self, *args: Any) -> BufferedLineLogger:
        return self.logger
