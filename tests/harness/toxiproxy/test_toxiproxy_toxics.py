"""Data path and every toxic, through the HTTP API and raw TCP (docs/toxiproxy-spec.md §5-§6).

Timing checks are lower bounds only (latency ≥ requested); everything else is
asserted on bytes, ordering and how connections end.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from .toxiproxy_helpers import (
    WAIT,
    Api,
    Upstream,
    connect,
    nothing_arrives,
    pattern,
    read_exactly,
    read_until_end,
    round_trip,
    set_linger_zero,
)


def port_of(proxy: dict) -> int:
    return int(proxy["listen"].rsplit(":", 1)[1])


async def test_passthrough_keeps_every_byte_in_order(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        reader, writer = await connect(port_of(proxy))
        payload = pattern(3_000_000)
        writer.write(payload)
        await writer.drain()
        assert await read_exactly(reader, len(payload)) == payload
        for size in (1, 10, 100, 1000):
            await round_trip(reader, writer, pattern(size))
        writer.close()
        server_side = await upstream.wait_conn(0)
        async with asyncio.timeout(WAIT):
            await server_side.ended.wait()
        assert server_side.end_reason == "eof"


async def test_dead_upstream_accepts_then_closes(api: Api) -> None:
    async with Upstream() as upstream:
        address = upstream.address
    proxy = await api.create(address)
    reader, writer = await connect(port_of(proxy))
    data, end = await read_until_end(reader)
    assert data == b"" and end in ("eof", "reset")
    writer.close()


async def test_no_half_close(api: Api) -> None:
    async with Upstream("sink") as upstream:
        proxy = await api.create(upstream.address)
        reader, writer = await connect(port_of(proxy))
        writer.write(b"request")
        writer.write_eof()
        data, _ = await read_until_end(reader)
        assert data == b""
        server_side = await upstream.wait_conn(0)
        async with asyncio.timeout(WAIT):
            await server_side.ended.wait()
        assert bytes(server_side.received) == b"request"
        writer.close()


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
async def test_latency_delays_each_round_trip(api: Api, stream: str) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="latency", stream=stream, attributes={"latency": 150})
        reader, writer = await connect(port_of(proxy))
        for _ in range(3):
            assert await round_trip(reader, writer, b"ping") >= 0.150
        writer.close()


async def test_latency_is_not_cumulative_over_a_burst(api: Api) -> None:
    async with Upstream("send_wait:1000000") as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="latency", attributes={"latency": 200})
        start = time.monotonic()
        reader, writer = await connect(port_of(proxy))
        first = await read_exactly(reader, 1)
        t_first = time.monotonic() - start
        rest = await read_exactly(reader, 999_999)
        assert first + rest == pattern(1_000_000)
        assert t_first >= 0.200
        writer.close()


async def test_jitter_stays_within_bounds_below(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="latency", attributes={"latency": 100, "jitter": 50})
        reader, writer = await connect(port_of(proxy))
        for _ in range(5):
            assert await round_trip(reader, writer, b"j") >= 0.050
        writer.close()


async def test_latency_added_live_applies_and_removal_releases_held_data(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        reader, writer = await connect(port_of(proxy))
        await round_trip(reader, writer, b"before")
        await api.toxic(proxy["name"], name="slow", type="latency", attributes={"latency": 120})
        assert await round_trip(reader, writer, b"during") >= 0.120
        patched = await api.call("PATCH", f"/proxies/{proxy['name']}/toxics/slow", {"attributes": {"latency": 250}})
        assert patched.status == 200
        assert await round_trip(reader, writer, b"updated") >= 0.250
        await api.call("PATCH", f"/proxies/{proxy['name']}/toxics/slow", {"attributes": {"latency": 60_000}})
        writer.write(b"held")
        await writer.drain()
        await (await upstream.wait_conn(0)).wait_received(b"beforeduringupdatedheld")
        assert (await api.call("DELETE", f"/proxies/{proxy['name']}/toxics/slow")).status == 204
        assert await read_exactly(reader, 4) == b"held"
        await round_trip(reader, writer, b"after")
        writer.close()


async def test_bandwidth_paces_and_keeps_bytes(api: Api) -> None:
    async with Upstream("send_wait:50000") as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="bandwidth", attributes={"rate": 100})
        start = time.monotonic()
        reader, writer = await connect(port_of(proxy))
        data = await read_exactly(reader, 50_000)
        assert data == pattern(50_000)
        assert time.monotonic() - start >= 0.4  # 50 kB at 100 KB/s = 0.5 s
        writer.close()


async def test_bandwidth_zero_blocks_until_removed(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], name="stuck", type="bandwidth", attributes={"rate": 0})
        reader, writer = await connect(port_of(proxy))
        writer.write(b"anyone?")
        await writer.drain()
        assert await nothing_arrives(reader, 0.3)
        assert (await api.call("DELETE", f"/proxies/{proxy['name']}/toxics/stuck")).status == 204
        assert await read_exactly(reader, 7) == b"anyone?"
        writer.close()


async def test_slow_close_delays_the_close_not_the_data(api: Api) -> None:
    async with Upstream("send:100") as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="slow_close", attributes={"delay": 300})
        reader, writer = await connect(port_of(proxy))
        data = await read_exactly(reader, 100)
        t_data = time.monotonic()
        rest, end = await read_until_end(reader)
        assert data == pattern(100) and rest == b"" and end == "eof"
        assert time.monotonic() - t_data >= 0.2
        writer.close()


async def test_timeout_zero_drops_data_and_never_closes_removal_closes(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], name="hang", type="timeout", attributes={"timeout": 0})
        reader, writer = await connect(port_of(proxy))
        writer.write(b"lost")
        await writer.drain()
        await (await upstream.wait_conn(0)).wait_received(b"lost")  # the other direction still flows
        assert await nothing_arrives(reader, 0.3)
        assert (await api.call("DELETE", f"/proxies/{proxy['name']}/toxics/hang")).status == 204
        data, end = await read_until_end(reader)
        assert data == b"" and end == "eof"
        writer.close()
        fresh_reader, fresh_writer = await connect(port_of(proxy))
        await round_trip(fresh_reader, fresh_writer, b"fine again")
        fresh_writer.close()


async def test_timeout_closes_gracefully_after_idle_time(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="timeout", attributes={"timeout": 300})
        start = time.monotonic()
        reader, writer = await connect(port_of(proxy))
        data, end = await read_until_end(reader)
        assert data == b"" and end == "eof"
        assert time.monotonic() - start >= 0.3
        writer.close()


async def test_reset_peer_at_connect_resets_on_traffic(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="reset_peer", attributes={"timeout": 0})
        reader, writer = await connect(port_of(proxy))
        writer.write(b"hello")
        await writer.drain()
        data, end = await read_until_end(reader)
        assert data == b"" and end == "reset"
        writer.close()


async def test_reset_peer_waits_for_traffic(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="reset_peer", stream="upstream", attributes={"timeout": 0})
        reader, writer = await connect(port_of(proxy))
        assert await nothing_arrives(reader, 0.2)
        writer.write(b"go")
        await writer.drain()
        _, end = await read_until_end(reader)
        assert end == "reset"
        writer.close()


async def test_reset_peer_added_to_live_connection_gives_eof(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        reader, writer = await connect(port_of(proxy))
        await round_trip(reader, writer, b"x")
        await api.toxic(proxy["name"], type="reset_peer", attributes={"timeout": 0})
        writer.write(b"y")
        await writer.drain()
        data, end = await read_until_end(reader)
        assert data == b"" and end == "eof"
        writer.close()


async def test_reset_peer_at_toxicity_zero_still_resets_on_close(api: Api) -> None:
    async with Upstream("sink") as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="reset_peer", toxicity=0, attributes={"timeout": 0})
        reader, writer = await connect(port_of(proxy))
        writer.write(b"data")
        await writer.drain()
        server_side = await upstream.wait_conn(0)
        writer.close()
        async with asyncio.timeout(WAIT):
            await server_side.ended.wait()
        assert bytes(server_side.received) == b"data"
        assert server_side.end_reason == "reset"


async def test_slicer_cuts_into_pieces_and_keeps_bytes(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="slicer",
                        attributes={"average_size": 100, "size_variation": 20, "delay": 20_000})
        reader, writer = await connect(port_of(proxy))
        payload = pattern(1000)
        writer.write(payload)
        await writer.drain()
        reads = []
        async with asyncio.timeout(WAIT):
            while sum(map(len, reads)) < len(payload):
                reads.append(await reader.read(65536))
        assert b"".join(reads) == payload
        assert len(reads) >= 2 and max(map(len, reads)) < 1000
        writer.close()


@pytest.mark.parametrize(("stream", "limit"), [("downstream", 1000), ("upstream", 100)])
async def test_limit_data_truncates_exactly_then_closes(api: Api, stream: str, limit: int) -> None:
    async with Upstream("send_wait:5000" if stream == "downstream" else "sink") as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="limit_data", stream=stream, attributes={"bytes": limit})
        reader, writer = await connect(port_of(proxy))
        if stream == "upstream":
            writer.write(pattern(5000))
            await writer.drain()
        data, end = await read_until_end(reader)
        if stream == "downstream":
            assert data == pattern(5000)[:limit] and end == "eof"
        else:
            server_side = await upstream.wait_conn(0)
            async with asyncio.timeout(WAIT):
                await server_side.ended.wait()
            assert bytes(server_side.received) == pattern(5000)[:limit]
        writer.close()


async def test_noop_and_toxicity_zero_pass_data(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="noop")
        await api.toxic(proxy["name"], type="timeout", toxicity=0, attributes={"timeout": 0})
        reader, writer = await connect(port_of(proxy))
        await round_trip(reader, writer, pattern(5000))
        writer.close()


async def test_toxicity_is_drawn_per_connection(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], type="limit_data", toxicity=0.5, attributes={"bytes": 0})
        outcomes = []
        for _ in range(24):
            reader, writer = await connect(port_of(proxy))
            writer.write(b"a")
            await writer.drain()
            first = await read_until_end_or(reader, 1)
            if first == b"a":
                for message in (b"b", b"c"):  # unaffected connections stay unaffected
                    await round_trip(reader, writer, message)
                outcomes.append("passed")
            else:
                assert first == b""
                outcomes.append("cut")
            writer.close()
        assert "passed" in outcomes and "cut" in outcomes, outcomes


async def read_until_end_or(reader: asyncio.StreamReader, size: int) -> bytes:
    async with asyncio.timeout(WAIT):
        try:
            return await reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except ConnectionResetError:
            return b""


async def test_chained_toxics_apply_in_order(api: Api) -> None:
    async with Upstream("send_wait:3000") as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], name="a", type="latency", attributes={"latency": 100})
        await api.toxic(proxy["name"], name="b", type="latency", attributes={"latency": 100})
        await api.toxic(proxy["name"], name="c", type="limit_data", attributes={"bytes": 2000})
        start = time.monotonic()
        reader, writer = await connect(port_of(proxy))
        data, end = await read_until_end(reader)
        assert data == pattern(2000) and end == "eof"
        assert time.monotonic() - start >= 0.2
        writer.close()


async def test_client_reset_propagates_as_close(api: Api) -> None:
    async with Upstream("sink") as upstream:
        proxy = await api.create(upstream.address)
        reader, writer = await connect(port_of(proxy))
        writer.write(b"bye")
        await writer.drain()
        server_side = await upstream.wait_conn(0)
        set_linger_zero(writer)
        writer.transport.abort()
        async with asyncio.timeout(WAIT):
            await server_side.ended.wait()


async def test_removing_reset_peer_waits_for_its_countdown(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        await api.toxic(proxy["name"], name="rst", type="reset_peer", attributes={"timeout": 500})
        reader, writer = await connect(port_of(proxy))
        writer.write(b"trigger")
        await writer.drain()
        # The echo is written as the server receives it; it reaches the reset_peer stage
        # before the DELETE below has been parsed.
        await (await upstream.wait_conn(0)).wait_received(b"trigger")
        start = time.monotonic()
        deleted = await api.call("DELETE", f"/proxies/{proxy['name']}/toxics/rst")
        assert deleted.status == 204
        data, end = await read_until_end(reader)
        assert data == b"" and end == "reset"  # the countdown still ends in a reset
        assert time.monotonic() - start >= 0.3  # the DELETE waited for (most of) the 500 ms countdown
        writer.close()


async def test_toxic_churn_on_busy_connections_keeps_every_byte(api: Api) -> None:
    """Add/update/remove data-preserving toxics while 8 connections echo: nothing lost or reordered."""
    import random

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    stop = asyncio.Event()

    async def client(index: int) -> int:
        reader, writer = await connect(port_of(proxy))
        rounds = 0
        try:
            while not stop.is_set():
                payload = f"{index}:{rounds}:".encode() + pattern(rng.randrange(1, 3000))
                await round_trip(reader, writer, payload)
                rounds += 1
        finally:
            writer.close()
        return rounds

    kinds = [
        ("latency", {"latency": 5, "jitter": 3}), ("slicer", {"average_size": 50, "size_variation": 10, "delay": 100}),
        ("bandwidth", {"rate": 2000}), ("noop", {}), ("slow_close", {"delay": 1}),
    ]
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        clients = [asyncio.create_task(client(i)) for i in range(8)]
        try:
            live: list[str] = []
            for step in range(30):
                action = rng.choice(["add", "add", "update", "remove"]) if live else "add"
                if action == "add":
                    type_name, attributes = rng.choice(kinds)
                    name = f"t{step}"
                    await api.toxic(proxy["name"], name=name, type=type_name, attributes=attributes,
                                    stream=rng.choice(["upstream", "downstream"]), toxicity=rng.choice([0.5, 1.0]))
                    live.append(name)
                elif action == "update":
                    answer = await api.call("PATCH", f"/proxies/{proxy['name']}/toxics/{rng.choice(live)}",
                                            {"toxicity": rng.choice([0.0, 0.5, 1.0])})
                    assert answer.status == 200, (seed, answer.body)
                else:
                    name = live.pop(rng.randrange(len(live)))
                    answer = await api.call("DELETE", f"/proxies/{proxy['name']}/toxics/{name}")
                    assert answer.status == 204, (seed, answer.body)
            stop.set()
            async with asyncio.timeout(60):
                rounds = await asyncio.gather(*clients)
        except Exception as exc:
            raise AssertionError(f"toxic churn failed, seed {seed}") from exc
        finally:
            stop.set()
            for task in clients:
                task.cancel()
        assert all(count > 0 for count in rounds), f"seed {seed}: {rounds}"
