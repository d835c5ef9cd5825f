"""A small blocking Redis client for the command line's read-only look at the queues.

``gcmc-jobs queues`` makes three Redis calls and exits; importing redis-py for them costs
more than the command itself (redis-py 8 imports its asyncio and cluster clients, every
command module and, when installed, OpenTelemetry from ``redis/__init__``: ~0.1 s of CPU).
:class:`LightRedis` speaks RESP2 over one socket with nothing but the standard library.

It takes the URLs redis-py takes for the common cases only: ``redis://[[user]:password@]
host[:port][/db]`` and ``unix://[[user]:password@]/path[?db=N]``. :func:`parse_url` returns
None for any other (``rediss://``, query options such as ``socket_timeout``), and the caller
uses redis-py instead. Errors are redis-py's own exception types (imported when one is
raised), with redis-py's wording where it matters (``Error 111 connecting to host:port.``),
so :func:`gcmc_jobs.ops.failures.explain` names the setting at fault as it does for redis-py.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["LightRedis", "RedisAddress", "parse_url"]


@dataclass(frozen=True)
class RedisAddress:
    """Where and how to connect: a TCP host and port, or a unix socket path."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None

    @property
    def where(self) -> str:
        """The address as redis-py's errors write it."""
        return f"unix socket: {self.path}" if self.path is not None else f"{self.host}:{self.port}"


def parse_url(url: str) -> RedisAddress | None:
    """The address of ``url`` as redis-py's ``from_url`` reads it, or None when the URL asks
    for what this client does not do (TLS, query options other than ``db``, a malformed
    port or database number): use redis-py for it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("redis", "unix"):
        return None
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name != "db" for name, _ in query):
        return None
    db_text = next((value for name, value in query if name == "db"), None)
    if db_text is None and parts.scheme == "redis" and parts.path:
        db_text = unquote(parts.path).replace("/", "") or None
    if db_text is not None and not (db_text.isascii() and db_text.isdigit()):
        return None
    credentials = {
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "db": int(db_text) if db_text is not None else 0,
    }
    if parts.scheme == "unix":
        return RedisAddress(path=unquote(parts.path), **credentials)  # type: ignore[arg-type]
    return RedisAddress(
        host=unquote(parts.hostname) if parts.hostname else "localhost",
        port=port or 6379,
        **credentials,  # type: ignore[arg-type]
    )


def _pack(command: Sequence[str | bytes | int]) -> bytes:
    out = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _ErrorReply:
    """An error reply, raised once every reply of the batch is read."""

    def __init__(self, text: str) -> None:
        self.text = text


# What redis-py raises as AuthenticationError (a ConnectionError) rather than ResponseError.
_AUTH_ERRORS = ("WRONGPASS", "NOAUTH", "ERR invalid password", "ERR AUTH", "ERR invalid username")


class LightRedis:
    """One connection to ``address``; every connect, send and read gives up after
    ``timeout_ms``. Use as a context manager, or :meth:`close` it."""

    def __init__(self, address: RedisAddress, *, timeout_ms: int = 2_000) -> None:
        self.address = address
        seconds = timeout_ms / 1000
        try:
            if address.path is not None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.settimeout(seconds)
                self._sock.connect(address.path)
            else:
                self._sock = socket.create_connection((address.host, address.port), seconds)
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock.settimeout(seconds)
        except TimeoutError as exc:
            raise _redis_error("TimeoutError", f"Timeout connecting to {address.where}.") from exc
        except OSError as exc:
            raise _connect_error(address, exc) from exc
        self._reader = self._sock.makefile("rb")
        hello: list[Sequence[str | bytes | int]] = []
        if address.password is not None:
            user = [address.username] if address.username else []
            hello.append(["AUTH", *user, address.password])
        if address.db:
            hello.append(["SELECT", address.db])
        if hello:
            try:
                self.execute(*hello)
            except BaseException:
                self.close()
                raise

    def __enter__(self) -> LightRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, *commands: Sequence[str | bytes | int]) -> list[Any]:
        """Send ``commands`` in one write and return their replies, in order (bulk strings
        as bytes, integers as int, arrays as lists). An error reply raises redis-py's
        ``ResponseError`` (``AuthenticationError`` for a refused password) after every reply
        has been read."""
        try:
            self._sock.sendall(b"".join(_pack(c) for c in commands))
            replies = [self._read() for _ in commands]
        except TimeoutError as exc:
            raise _redis_error(
                "TimeoutError", f"Timeout reading from {self.address.where}"
            ) from exc
        except OSError as exc:
            raise _redis_error(
                "ConnectionError", f"Error while reading from {self.address.where}: {exc}"
            ) from exc
        for reply in replies:
            if isinstance(reply, _ErrorReply):
                kind = "AuthenticationError" if reply.text.startswith(_AUTH_ERRORS) else ""
                raise _redis_error(kind or "ResponseError", reply.text)
        return replies

    def close(self) -> None:
        """Close the connection (again is harmless)."""
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()
        self._sock.close()

    def _read(self) -> Any:
        line = self._reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionResetError("Connection closed by server.")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            return _ErrorReply(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self._reader.read(size + 2)
            if len(data) != size + 2:
                raise ConnectionResetError("Connection closed by server.")
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            if count < 0:
                return None
            items = [self._read() for _ in range(count)]
            # An error inside an array (a Lua error in a nested reply) is raised like a top one.
            return next((i for i in items if isinstance(i, _ErrorReply)), items)
        raise ConnectionError(f"Protocol error: unexpected reply {line[:40]!r}")


def _redis_error(kind: str, message: str) -> Exception:
    # Imported on failure only: redis-py's import is what this module avoids.
    from redis import exceptions

    error: Exception = getattr(exceptions, kind)(message)
    return error


def _connect_error(address: RedisAddress, exc: OSError) -> Exception:
    """redis-py's wording: ``Error 111 connecting to 127.0.0.1:6379. Connection refused.``"""
    if exc.errno is None:
        return _redis_error("ConnectionError", f"Error connecting to {address.where}. {exc}.")
    reason = exc.strerror or str(exc)
    return _redis_error(
        "ConnectionError", f"Error {exc.errno} connecting to {address.where}. {reason}."
    )
