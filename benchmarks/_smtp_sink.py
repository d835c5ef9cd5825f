"""A local SMTP sink for the email benchmark, run as its own process (its own GIL).

``python benchmarks/_smtp_sink.py PORT STATE_DIR``: accepts every message; writes the
number received to ``STATE_DIR/count`` after each message,
and the arrival time (``time.time()``) of each ``X-GCMC-Kind: password_reset`` message to
``STATE_DIR/resets`` (one line each).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Counter:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.count = 0
        self.lock = threading.Lock()

    def _write_count(self) -> None:
        tmp = self.state / "count.tmp"
        tmp.write_text(str(self.count))
        tmp.replace(self.state / "count")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        content: bytes = envelope.original_content or envelope.content
        head = content.split(b"\r\n\r\n", 1)[0]
        with self.lock:
            self.count += 1
            if b"X-GCMC-Kind: password_reset" in head:
                with (self.state / "resets").open("a") as file:
                    file.write(f"{now}\n")
            self._write_count()
        return "250 2.0.0 Ok"


def main() -> None:
    port, state = int(sys.argv[1]), Path(sys.argv[2])
    handler = Counter(state)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    (state / "ready").write_text("1")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    with handler.lock:
        handler._write_count()
    controller.stop()


if __name__ == "__main__":
    main()
