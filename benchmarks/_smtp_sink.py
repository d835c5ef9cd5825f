"""The email benchmark's SMTP server, run as its own process (its own GIL).

``python benchmarks/_smtp_sink.py PORT STATE_DIR``: the packaged
:class:`gcmc_jobs.testing.SmtpSink` (accepts every message) on ``PORT``. Every 10 ms it
writes the number of messages received to ``STATE_DIR/count``, and appends the arrival time
(``time.time()`` when the sink accepted it) of each ``X-GCMC-Kind: password_reset`` message
to ``STATE_DIR/resets`` (one line each). ``STATE_DIR/ready`` appears once it listens.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from gcmc_jobs.testing import SmtpSink

RESET = b"X-GCMC-Kind: password_reset"


def main() -> None:
    port, state = int(sys.argv[1]), Path(sys.argv[2])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seen = 0
    with SmtpSink(port=port) as sink:
        (state / "ready").write_text("1")
        while True:
            stopping = stop.wait(0.01)
            deliveries = sink.deliveries
            resets = [
                d.received_at
                for d in deliveries[seen:]
                if RESET in d.content.split(b"\r\n\r\n", 1)[0]
            ]
            if resets:
                with (state / "resets").open("a") as file:
                    file.writelines(f"{at}\n" for at in resets)
            if len(deliveries) != seen:
                seen = len(deliveries)
                tmp = state / "count.tmp"
                tmp.write_text(str(seen))
                tmp.replace(state / "count")
            if stopping:
                break


if __name__ == "__main__":
    main()
