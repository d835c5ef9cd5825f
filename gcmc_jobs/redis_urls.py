"""Redis URLs, plain or Sentinel, and the one function that turns one into a client.

Every Redis client gcmc-jobs builds (the broker's, the stores', health checks', the
command line's) comes from :func:`redis_from_url`, so every URL setting accepts the same
forms:

- ``redis://``, ``rediss://``, ``unix://``: one server (redis-py's ``Redis.from_url``);
- ``redis+sentinel://[[user]:password@]host1:26379,host2:26379,host3:26379/mymaster[/db]``
  ``[?sentinel_password=...&sentinel_username=...]``: the primary of the service
  ``mymaster`` that the listed Sentinels name (``port`` defaults to 26379, ``db`` to 0).
  The user and password before the hosts are the *data* servers' (primary and replicas);
  the Sentinels' own, when they have ``requirepass`` set, go in the query.

A Sentinel client is redis-py's ``Sentinel(...).master_for(name)``: each connection asks
the Sentinels for the current primary when it connects; after a failover, a command that
meets a closed connection or a demoted primary (``READONLY``) drops it, and the retry (one,
at once, by default) connects to the primary the Sentinels name then; while they name none
(the seconds of the vote), the command raises ``ConnectionError`` and the caller's own retry
applies (a worker's consumer reconnects with backoff). ``client.close()`` closes the Sentinel
connections too.

Parsing a URL imports nothing; building a client imports redis-py (``import gcmc_jobs``
stays light, ``tests/test_imports.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

__all__ = [
    "SENTINEL_DEFAULT_PORT",
    "SENTINEL_SCHEME",
    "SentinelUrl",
    "is_sentinel_url",
    "parse_sentinel_url",
    "redis_from_url",
]

#: The scheme of a Sentinel URL.
SENTINEL_SCHEME = "redis+sentinel"
#: A Sentinel's port when the URL gives none (Redis' default for ``redis-server --sentinel``).
SENTINEL_DEFAULT_PORT = 26379
#: The query parameters a Sentinel URL accepts.
_QUERY_NAMES = ("sentinel_password", "sentinel_username")
# Written so that the masking of error messages (gcmc_jobs.redaction) leaves it readable.
_FORMAT = (
    "redis+sentinel://host1:26379,host2:26379/mymaster[/db], with the data servers' "
    "user:password@ before the hosts and the Sentinels' password as the query parameter "
    "sentinel_password"
)


@dataclass(frozen=True)
class SentinelUrl:
    """What a ``redis+sentinel://`` URL names (:func:`parse_sentinel_url`)."""

    #: The service (master) name the Sentinels monitor, e.g. ``mymaster``.
    service_name: str
    #: ``(host, port)`` of each Sentinel, in the URL's order.
    sentinels: tuple[tuple[str, int], ...]
    #: The database number on the primary.
    db: int = 0
    #: The data servers' user and password (``AUTH``), if any.
    username: str | None = None
    password: str | None = None
    #: The Sentinels' own user and password, if they require one.
    sentinel_username: str | None = None
    sentinel_password: str | None = None


def is_sentinel_url(url: str) -> bool:
    """True when ``url`` has the ``redis+sentinel://`` scheme (case-insensitive)."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() == SENTINEL_SCHEME


def _malformed(reason: str) -> ValueError:
    # The URL is never echoed: it may hold a password.
    return ValueError(f"malformed Sentinel URL ({reason}); expected {_FORMAT}")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _malformed(f"a Sentinel port is not a number from 1 to 65535: {text!r}")
    return int(text)


def _address(text: str) -> tuple[str, int]:
    """``(host, port)`` of one ``host[:port]`` (``[v6]:port`` for IPv6)."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise _malformed("an IPv6 Sentinel address is not [address]:port")
        return host, _port(rest[1:]) if rest else SENTINEL_DEFAULT_PORT
    host, colon, port = text.partition(":")
    if not host:
        raise _malformed("a Sentinel address has no host")
    return host, _port(port) if colon else SENTINEL_DEFAULT_PORT


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Parse a ``redis+sentinel://`` URL (format in the module docstring).

    Raises ``ValueError`` saying what is wrong and showing the expected format, without
    echoing the URL (it may hold passwords).
    """
    if not is_sentinel_url(url):
        raise _malformed(f"the scheme is not {SENTINEL_SCHEME}://")
    rest = url.partition("://")[2]
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise _malformed("it has a #fragment")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        hosts = netloc
    if not hosts or not all(part.strip() for part in hosts.split(",")):
        raise _malformed("no Sentinel host, or an empty one between commas")
    sentinels = tuple(_address(part.strip()) for part in hosts.split(","))
    segments = path.split("/") if slash else []
    if not segments or not segments[0]:
        raise _malformed("no master name after the hosts")
    if len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise _malformed("the path is not /<master name>[/<db number>]")
    db = int(segments[1]) if len(segments) == 2 else 0
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _malformed("the query string is not name=value pairs") from None
    unknown = sorted(set(params) - set(_QUERY_NAMES))
    if unknown:
        raise _malformed(f"unknown query parameter(s) {unknown}; known: {list(_QUERY_NAMES)}")
    if any(len(values) > 1 for values in params.values()):
        raise _malformed("a query parameter is given twice")
    return SentinelUrl(
        service_name=unquote(segments[0]),
        sentinels=sentinels,
        db=db,
        username=username,
        password=password,
        sentinel_username=params.get("sentinel_username", [None])[0] or None,
        sentinel_password=params.get("sentinel_password", [None])[0] or None,
    )


def redis_from_url(url: str, **options: Any) -> Any:
    """A ``redis.Redis`` on ``url``: ``Redis.from_url(url, **options)`` for a plain URL,
    the Sentinel-managed primary for a ``redis+sentinel://`` one.

    ``options`` are ``redis.Redis`` keyword arguments (``socket_timeout``, ``retry``, ...);
    for a Sentinel URL they apply to the primary's connections, and the ``socket_*`` ones
    to the Sentinel connections too; ``retry`` defaults to one immediate retry there. A
    malformed Sentinel URL raises ``ValueError`` (:func:`parse_sentinel_url`). Connects to
    nothing: connections open on first use.
    """
    import redis  # deferred: see the module docstring

    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    parsed = parse_sentinel_url(url)
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    # Retried once at once (unless the caller says otherwise): a command that meets the
    # dead primary's closed connection or a demoted primary's READONLY is sent again on a
    # connection to the primary the Sentinels name now. redis-py gives a client built on
    # a pool (master_for, like from_url) no retry at all.
    options.setdefault("retry", Retry(NoBackoff(), 1))

    sentinel_options: dict[str, Any] = {k: v for k, v in options.items() if k.startswith("socket_")}
    if parsed.sentinel_password is not None:
        sentinel_options["password"] = parsed.sentinel_password
    if parsed.sentinel_username is not None:
        sentinel_options["username"] = parsed.sentinel_username
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(parsed.sentinels), sentinel_kwargs=sentinel_options
    )
    credentials = {
        k: v
        for k, v in (("username", parsed.username), ("password", parsed.password))
        if v is not None
    }
    return sentinel.master_for(  # type: ignore[no-untyped-call]
        parsed.service_name,
        redis_class=_sentinel_redis_class(),
        connection_class=_sentinel_connection_class(),
        db=parsed.db,
        **credentials,
        **options,
    )


def _close_sentinels(client: Any) -> None:
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    if manager is not None:
        manager.close()


_sentinel_class: Any = None


def _sentinel_redis_class() -> Any:
    global _sentinel_class
    if _sentinel_class is None:
        import redis

        class SentinelRedis(redis.Redis):
            """``redis.Redis`` on a Sentinel-managed primary whose ``close()`` also closes
            the connections to the Sentinels."""

            def close(self) -> None:
                super().close()
                _close_sentinels(self)

        _sentinel_class = SentinelRedis
    return _sentinel_class


_connection_class: Any = None


def _sentinel_connection_class() -> Any:
    """redis-py 8's ``SentinelManagedConnection``, connecting through the Sentinels on a
    first send too.

    Its ``connect()`` asks the Sentinels for the primary, but ``send_packed_command`` on a
    disconnected connection calls the base class's ``connect_check_health``, which connects
    to the address the connection had last (the old primary, or redis-py's default
    ``localhost:6379`` for a connection never connected): after a ``READONLY`` from a demoted
    primary, the retry went back to it (``tests/test_redis_urls.py``).
    """
    global _connection_class
    if _connection_class is None:
        from redis.sentinel import SentinelManagedConnection

        class SentinelConnection(SentinelManagedConnection):
            def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                if not self._sock:
                    self.connect()  # type: ignore[no-untyped-call]
                super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]

        _connection_class = SentinelConnection
    return _connection_class
