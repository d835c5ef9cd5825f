"""``Transport.probe``: asks the mail server whether it takes mail without sending any (what
the mail circuit breaker calls while it is open), against a real aiosmtpd."""

from __future__ import annotations

import pytest

from gcmc_jobs.email.transports import FileTransport, MemoryTransport, SmtpTransport
from gcmc_jobs.errors import TransientDeliveryError
from gcmc_jobs.testing import SmtpSink


def test_a_probe_greets_the_server_and_sends_nothing(smtp_server: SmtpSink) -> None:
    transport = SmtpTransport(smtp_server.url)
    transport.probe()
    transport.probe()
    assert smtp_server.connections == 2  # a connection of its own each time, closed
    assert smtp_server.count() == 0
    transport.close()


def test_a_probe_of_a_server_that_is_down_is_a_transient_error(smtp_server: SmtpSink) -> None:
    transport = SmtpTransport(smtp_server.url, retry_attempts=1)
    smtp_server.go_down()  # each connection answered 421, then closed
    with pytest.raises(TransientDeliveryError, match="421"):
        transport.probe()
    assert smtp_server.refused_connections == 1
    smtp_server.stop()  # nothing listens: connection refused
    with pytest.raises(TransientDeliveryError, match="cannot connect"):
        transport.probe()
    smtp_server.start()
    transport.probe()
    assert (smtp_server.connections, smtp_server.refused_connections) == (1, 1)


def test_transports_without_a_server_always_pass_a_probe(tmp_path: object) -> None:
    MemoryTransport().probe()
    FileTransport(str(tmp_path)).probe()
