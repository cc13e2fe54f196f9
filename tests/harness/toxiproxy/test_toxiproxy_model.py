"""Sans-IO parts of the bundled server: Go-compatible JSON, body parsing, slicing."""
from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comfy_chaos.harness.toxiproxy.gojson import GoJSONError, dumps, loads, to_float32
from comfy_chaos.harness.toxiproxy.model import ApiError, parse_new_toxic, parse_populate, split_host_port
from comfy_chaos.harness.toxiproxy.toxics import slice_points


@pytest.mark.parametrize(("value", "text"), [
    (1, "1"), (0.5, "0.5"), (0.3, "0.3"), (0.1, "0.1"), (-1, "-1"), (2.5, "2.5"),
    (1e-7, "1e-7"), (1e-6, "0.000001"), (1 / 3, "0.33333334"), (1e22, "1e+22"),
])
def test_float32_is_written_in_shortest_go_form(value: float, text: str) -> None:
    assert dumps(to_float32(value)).decode() == text


def test_strings_escape_html_like_go() -> None:
    assert dumps({"k": "<a&b>\u2028é"}) == '{"k":"\\u003ca\\u0026b\\u003e\\u2028é"}'.encode()


@pytest.mark.parametrize(("body", "message"), [
    (b"", "EOF"), (b"   \n", "EOF"), (b'{"name": "x', "unexpected EOF"), (b"[1, 2", "unexpected EOF"),
    (b"{nope}", "invalid character 'n' looking for beginning of object key string"),
    (b"xyz", "invalid character 'x' looking for beginning of value"),
])
def test_decoder_errors_read_like_go(body: bytes, message: str) -> None:
    with pytest.raises(GoJSONError) as info:
        loads(body)
    assert str(info.value) == message


def test_decoder_reads_only_the_first_value() -> None:
    assert loads(b'{"a": 1} trailing garbage') == {"a": 1}


def test_toxic_checks_run_in_toxiproxy_order() -> None:
    taken = {"latency_downstream"}.__contains__
    with pytest.raises(ApiError) as info:
        parse_new_toxic(b'{"type": "nope", "stream": "sideways"}', taken)
    assert info.value.message.startswith("stream was invalid")
    with pytest.raises(ApiError) as info:
        parse_new_toxic(b'{"type": "latency", "attributes": {"latency": "x"}}', taken)
    assert info.value.status == 409  # the name clash is found before the attributes are read
    toxic = parse_new_toxic(b'{"type": "latency", "stream": "UpStream", "attributes": {"jitter": 3}}', taken)
    assert (toxic.name, toxic.direction, toxic.attributes) == ("latency_UpStream", "upstream", {"latency": 0, "jitter": 3})


def test_populate_validates_everything_first() -> None:
    with pytest.raises(ApiError) as info:
        parse_populate(b'[{"name": "a", "upstream": "h:1"}, {"upstream": "h:2"}]')
    assert info.value.message == "missing required field: name at proxy 2"


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1:80", ("127.0.0.1", 80)), ("[::1]:0", ("::1", 0)), (":8474", ("", 8474)), ("localhost:", ("localhost", 0)),
])
def test_split_host_port(address: str, expected: tuple[str, int]) -> None:
    assert split_host_port(address) == expected


def test_split_host_port_errors_name_the_address() -> None:
    with pytest.raises(ValueError, match="address notahost: missing port in address"):
        split_host_port("notahost")


@given(size=st.integers(0, 5000), average=st.integers(1, 300), variation=st.integers(0, 400), seed=st.integers(0, 2**32))
def test_slices_cover_the_chunk_in_order(size: int, average: int, variation: int, seed: int) -> None:
    pieces = slice_points(size, average, variation, random.Random(seed).randrange)
    assert pieces[0][0] == 0 and pieces[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    assert all(end - start <= average + variation for start, end in pieces)
    assert size == 0 or all(end > start for start, end in pieces)
