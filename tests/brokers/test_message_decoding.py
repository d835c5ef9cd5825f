"""The Redis consumer's decoding of fetched bodies (gcmc_jobs.brokers.redis_broker._decode,
issue 17 item 2): for any body, the same proxy as ``_FieldsProxy(Message.decode(body))``
(Dramatiq's decode with its JSON encoder), or the same ``DecodeError``; and a host's own
encoder still decodes what the consumer fetches."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.encoder import PickleEncoder
from dramatiq.errors import DecodeError
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gcmc_jobs.brokers.redis_broker import RedisBroker, _decode, _FieldsProxy

FIELDS = (
    "queue_name", "actor_name", "args", "kwargs", "options", "message_id", "message_timestamp"
)  # fmt: skip

# Any JSON value json.dumps writes: integers past 64 bits, NaN and infinities, any text
# (lone surrogates included: escaped by ensure_ascii, unencodable without it).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(), inner)),
    max_leaves=12,
)


@st.composite
def message_fields(draw: st.DrawFn) -> dict[str, Any]:
    """A message's fields as Dramatiq encodes them, sometimes with one missing, one more, or
    ``args`` not a list."""
    fields: dict[str, Any] = {
        "queue_name": draw(st.one_of(st.text(), values)),
        "actor_name": draw(st.one_of(st.text(), values)),
        "args": draw(st.one_of(st.lists(values, max_size=4), values)),
        "kwargs": draw(st.one_of(st.dictionaries(st.text(), values, max_size=3), values)),
        "options": draw(st.one_of(st.dictionaries(st.text(), values, max_size=3), values)),
        "message_id": draw(st.one_of(st.uuids().map(str), values)),
        "message_timestamp": draw(st.one_of(st.integers(min_value=0), values)),
    }
    edit = draw(st.sampled_from(["none", "none", "none", "drop", "add", "dup"]))
    if edit == "drop":
        del fields[draw(st.sampled_from(FIELDS))]
    elif edit == "add":
        fields[draw(st.text())] = draw(values)
    keys = draw(st.permutations(list(fields)))
    return {key: fields[key] for key in keys}


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Encoded messages as any producer may write them (compact or not, ASCII or not, a key
    twice, whitespace around, a BOM, extra data), some cut or with a byte changed."""
    fields = draw(st.one_of(message_fields(), values))
    ensure_ascii = draw(st.booleans())
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :")]))
    text = json.dumps(fields, ensure_ascii=ensure_ascii, separators=separators)
    if isinstance(fields, dict) and fields and draw(st.booleans()):
        key = json.dumps(next(iter(fields)))  # the first key again, at the end: last one wins
        text = text[:-1] + f"{separators[0]}{key}{separators[1]}{json.dumps(draw(values))}}}"
    text = draw(st.sampled_from(["", " ", "\n", "\ufeff", "\t\r"])) + text
    text += draw(st.sampled_from(["", " ", "\n", "x", "{}", "\x00"]))
    data = text.encode("utf-8", "surrogatepass")  # lone surrogates: invalid UTF-8 here
    change = draw(st.sampled_from(["none", "none", "none", "cut", "byte"]))
    if change == "cut" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif change == "byte" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    return data


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1, 1.0 and True differ; NaN is NaN;
    -0.0 is not 0.0; dicts in the same order)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        same_zero = math.copysign(1, a) == math.copysign(1, b)
        return (math.isnan(a) and math.isnan(b)) or (a == b and same_zero)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _state(proxy: Any, data: bytes) -> dict[str, Any]:
    """A proxy's attributes, and its message's, apart from the message object itself and
    the fields Message's defaults made up (a body without a message id or timestamp)."""
    fields = json.loads(data)  # decoded already: valid JSON
    made_up = {"_message"} | {f for f in ("message_id", "message_timestamp") if f not in fields}
    return {
        "proxy": {k: v for k, v in sorted(vars(proxy).items()) if k not in made_up},
        "message_type": type(proxy._message),
        "message": {k: v for k, v in sorted(vars(proxy._message).items()) if k not in made_up},
    }


def _dramatiq(data: bytes) -> Any:
    try:
        return _state(_FieldsProxy(dramatiq.Message.decode(data)), data)
    except DecodeError as error:
        return DecodeError, str(error), type(error.error), error.data


def _ours(data: bytes) -> Any:
    try:
        return _state(_decode(data), data)
    except DecodeError as error:
        return DecodeError, str(error), type(error.error), error.data


def _raw(
    args: str, options: str = "{}", ids: str = ',"message_id":"m","message_timestamp":1'
) -> bytes:
    """A body written by hand: ``args`` and ``options`` as given (JSON text)."""
    text = f'{{"queue_name":"q","actor_name":"a","args":{args},"kwargs":{{}},"options":{options}'
    return (text + ids + "}").encode()


@settings(max_examples=200)
@given(bodies())
@example(_raw("[1e400, NaN, -Infinity, -0.0, 123456789012345678901234567890, 1E2, -0]"))
@example(_raw('["\\ud800", "\\u00e9"]', options='{"a":1,"a":2}'))  # lone surrogate, key twice
@example(_raw('"ab"'))  # args a string: Dramatiq makes it ("a", "b")
@example(_raw("[]", ids=""))  # no message id or timestamp: Message's defaults
@example(b"\xef\xbb\xbf" + _raw("[]"))  # a UTF-8 BOM
@example(b"[" * 100_000)  # deeper than the recursion limit
def test_a_body_decodes_to_what_dramatiqs_decode_gives_or_the_same_error(data: bytes) -> None:
    theirs, ours = _dramatiq(data), _ours(data)
    assert _same(ours, theirs), (ours, theirs)


def test_a_decoded_message_is_a_message_with_its_fields_and_args_a_tuple() -> None:
    # Given a body as Dramatiq encodes a message
    sent = dramatiq.Message(
        queue_name="q", actor_name="a", args=(1, [2]), kwargs={"k": None}, options={"o": 1.5}
    )
    # When it is decoded
    proxy = _decode(sent.encode())
    # Then the proxy and its message hold the fields, equal to the sent message's
    assert proxy._message == sent
    assert type(proxy._message) is dramatiq.Message
    assert type(proxy.args) is tuple
    assert proxy.args is proxy._message.args
    assert proxy.options is proxy._message.options
    assert (proxy.failed, proxy._exception) == (False, None)
    assert proxy.asdict() == sent.asdict()
    assert proxy.message_datetime == sent.message_datetime


@pytest.fixture
def pickled(gcmc_redis_url: str) -> Iterator[RedisBroker]:
    """Our broker with Dramatiq's encoder set to pickle for the test's length."""
    namespace = f"gcmc_test_dec_{uuid.uuid4().hex[:10]}"
    previous = dramatiq.get_encoder()
    dramatiq.set_encoder(PickleEncoder())
    built = RedisBroker(url=gcmc_redis_url, namespace=namespace, middleware=[])
    built.declare_queue("q")
    try:
        yield built
    finally:
        dramatiq.set_encoder(previous)
        built.close()
        client = redis.Redis.from_url(gcmc_redis_url)
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def test_a_host_encoder_decodes_what_the_consumer_fetches(pickled: RedisBroker) -> None:
    # Given a message sent while Dramatiq's encoder is pickle (not JSON)
    sent = pickled.enqueue(
        dramatiq.Message(queue_name="q", actor_name="a", args=(1,), kwargs={}, options={})
    )
    # When a consumer fetches it
    consumer = pickled.consume("q", prefetch=10, timeout=100)
    received = next(message for message in consumer if message is not None)
    consumer.close()
    # Then the encoder decoded it
    assert received.message_id == sent.message_id
    assert received.args == (1,)
    assert received.options["redis_message_id"] == sent.options["redis_message_id"]
