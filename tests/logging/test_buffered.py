"""gcmc_jobs.logging.BufferedLineLogger: the worker's log writer — lines written in batches,
once each, in order, from any thread, without a logging thread waiting for a write."""

from __future__ import annotations

import io
import threading

from gcmc_jobs.logging import BufferedLineLogger


class _GatedStream(io.StringIO):
    """A stream whose first write waits until ``gate`` is set (a pipe nobody reads yet)."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = threading.Event()
        self.gate = threading.Event()

    def write(self, text: str) -> int:
        if not self.gate.is_set():
            self.writing.set()
            self.gate.wait(10)
        return super().write(text)


def _blocked_flush() -> tuple[_GatedStream, BufferedLineLogger, threading.Thread]:
    """A logger with "one" buffered, and a thread flushing it, blocked in the write."""
    stream = _GatedStream()
    logger = BufferedLineLogger(stream, buffer_ms=60_000)
    logger.info("one")
    flushing = threading.Thread(target=logger.flush)
    flushing.start()
    assert stream.writing.wait(10)
    return stream, logger, flushing


def test_a_thread_logging_while_lines_are_written_does_not_wait_for_the_write() -> None:
    # Given a flush blocked in the middle of writing the buffered lines
    stream, logger, flushing = _blocked_flush()

    # When another thread logs a line meanwhile
    logging = threading.Thread(target=logger.info, args=("two",))
    logging.start()
    logging.join(10)

    # Then it returned while the write is still blocked, and every line is written in order
    assert not logging.is_alive()
    assert flushing.is_alive()
    stream.gate.set()
    flushing.join(10)
    logger.flush()
    assert stream.getvalue() == "one\ntwo\n"


def test_a_warning_returns_once_it_and_the_lines_before_it_are_written() -> None:
    # Given a flush blocked writing "one"
    stream, logger, flushing = _blocked_flush()

    # When a warning is logged, it waits for that write, then writes itself
    warning = threading.Thread(target=logger.warning, args=("two",))
    warning.start()
    warning.join(0.2)
    assert warning.is_alive()  # still waiting: the flush before it has not written yet
    stream.gate.set()
    warning.join(10)
    assert not warning.is_alive()
    flushing.join(10)
    assert stream.getvalue() == "one\ntwo\n"


def test_lines_buffered_by_many_threads_while_flushing_are_written_once_each_in_order() -> None:
    # Given a logger whose writer thread flushes every millisecond, and warnings that flush
    stream = io.StringIO()
    logger = BufferedLineLogger(stream, buffer_ms=1)

    def log(name: str) -> None:
        for i in range(2_000):
            if i % 500 == 499:
                logger.warning(f"{name} {i}")
            else:
                logger.info(f"{name} {i}")

    # When four threads log at once
    threads = [threading.Thread(target=log, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    logger.flush()
    # Then every line is written once, whole, and each thread's lines in their order
    lines = stream.getvalue().splitlines()
    assert len(lines) == 8_000
    for n in range(4):
        assert [line for line in lines if line.startswith(f"t{n} ")] == [
            f"t{n} {i}" for i in range(2_000)
        ]
