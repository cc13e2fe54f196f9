"""Toxiproxy benchmark: toxic accuracy and passthrough cost of the bundled server.

Prints, for the bundled server (run as a subprocess, like a real Toxiproxy) and for a
real Toxiproxy when one is at TOXIPROXY_URL or ``toxiproxy-server`` is on PATH:

* added latency error vs requested (p50/p95, target: p95 within 2 ms),
* bandwidth error vs requested rate (target: within 5 %),
* passthrough throughput for a large transfer, as a ratio to a direct connection,
* round trips/s for many small (WebSocket-sized) messages, as a ratio to direct.

The endpoints (echo and data sources) run in a process of their own, like the proxy, so
that the direct path (client process <-> endpoint process) and the proxied path (client
<-> proxy <-> endpoint) both cross processes. With the endpoints on the client's own event
loop, as this script once had them, one loop both sent and received the direct transfer
while the proxied one was spread over two processes, and every proxy, a real Toxiproxy
too, came out faster than "direct" (ratios above 1).

A script, not a test: the machine is shared and noisy, so it reports numbers and
ratios and asserts nothing. Usage: ``python benchmarks/toxiproxy_bench.py [--quick]``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

from comfy_chaos.harness.toxiproxy import ToxiproxyControl, resolve_backend
from comfy_chaos.harness.toxiproxy.backend import Backend

WAIT = 120.0


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


def _source(size: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    block = os.urandom(256 * 1024)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1)  # the client says go: its clock starts before the first byte
        left = size
        try:
            while left > 0:
                piece = block[: min(left, len(block))]
                writer.write(piece)
                left -= len(piece)
                await writer.drain()
            await reader.read()
        except ConnectionError:
            pass
        writer.close()

    return handler


async def _serve(handler: Callable[..., Awaitable[None]]) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, limit=256 * 1024)
    return server, server.sockets[0].getsockname()[1]


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, limit=256 * 1024)


async def _rtts(port: int, count: int, size: int) -> list[float]:
    reader, writer = await _connect(port)
    payload = b"x" * size
    samples = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            writer.write(payload)
            await reader.readexactly(size)
            samples.append(time.perf_counter() - start)
    finally:
        writer.close()
    return samples


async def _download(port: int, size: int) -> float:
    """Seconds from asking for ``size`` bytes to receiving the last one."""
    reader, writer = await _connect(port)
    try:
        start = time.perf_counter()
        writer.write(b"g")
        left = size
        while left > 0:
            data = await reader.read(1024 * 1024)
            if not data:
                raise RuntimeError(f"stream ended with {left} bytes missing")
            left -= len(data)
        return time.perf_counter() - start
    finally:
        writer.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _sizes(quick: bool) -> tuple[int, int]:
    """(bulk transfer, bandwidth-toxic transfer) in bytes."""
    return (20_000_000, 1_000_000) if quick else (200_000_000, 3_000_000)


async def _endpoints_main(quick: bool) -> None:
    """The child process: serve the echo and data sources, print their ports, run until stdin closes."""
    big, bw_size = _sizes(quick)
    servers = [await _serve(_echo), await _serve(_source(big)), await _serve(_source(bw_size))]
    print(json.dumps([port for _, port in servers]), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    for server, _ in servers:
        server.close()


async def bench_backend(label: str, backend: Backend, quick: bool) -> None:
    big, bw_size = _sizes(quick)
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--endpoints", *(["--quick"] if quick else []),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(WAIT):
            echo_port, source_port, bw_port = json.loads(await child.stdout.readline())
        await _measure(label, backend, quick, big, bw_size, echo_port, source_port, bw_port)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            async with asyncio.timeout(10):
                await child.wait()
        except TimeoutError:
            child.kill()
            await child.wait()


async def _measure(label: str, backend: Backend, quick: bool, big: int, bw_size: int,
                   echo_port: int, source_port: int, bw_port: int) -> None:
    names = []
    async with ToxiproxyControl(backend.url, timeout=30) as ctl:
        async def proxy(port: int) -> int:
            name = f"bench-{uuid.uuid4().hex[:8]}"
            names.append(name)
            return (await ctl.create_proxy(name, upstream=f"127.0.0.1:{port}")).listen_port

        try:
            print(f"\n== {label}: {backend.describe()}")
            async with asyncio.timeout(WAIT * 5):
                # latency accuracy
                rounds = 40 if quick else 200
                lat_port = await proxy(echo_port)
                baseline = await _rtts(lat_port, rounds, 64)
                base = statistics.median(baseline)
                noise = [abs(s - base) * 1000 for s in baseline]
                requested = 0.050
                await ctl.add_toxic(names[-1], "lat", "latency", "downstream", {"latency": int(requested * 1000)})
                errors = [abs(s - base - requested) * 1000 for s in await _rtts(lat_port, rounds, 64)]
                print(f"latency 50 ms: |error| p50 {_pct(errors, .5):.2f} ms, p95 {_pct(errors, .95):.2f} ms, "
                      f"max {max(errors):.2f} ms over {rounds} round trips (target p95 <= 2 ms; "
                      f"round-trip noise without the toxic: p95 {_pct(noise, .95):.2f} ms)")

                # bandwidth accuracy
                rate_kb = 1000
                bw_proxy = await proxy(bw_port)
                await ctl.add_toxic(names[-1], "bw", "bandwidth", "downstream", {"rate": rate_kb})
                elapsed = await _download(bw_proxy, bw_size)
                measured = bw_size / elapsed
                print(f"bandwidth {rate_kb} KB/s: measured {measured / 1000:.1f} KB/s over {bw_size / 1e6:.0f} MB, "
                      f"error {100 * (measured / (rate_kb * 1000) - 1):+.2f} % (target within 5 %)")

                # passthrough throughput
                pass_port = await proxy(source_port)
                direct = min([await _download(source_port, big) for _ in range(2)])
                proxied = min([await _download(pass_port, big) for _ in range(2)])
                print(f"passthrough {big / 1e6:.0f} MB: direct {big / direct / 1e6:.0f} MB/s, "
                      f"proxied {big / proxied / 1e6:.0f} MB/s, proxied/direct {direct / proxied:.2f}")

                # small messages
                echo_proxy = await proxy(echo_port)
                count = 2000 if quick else 10000
                direct_rtt = sum(await _rtts(echo_port, count, 200))
                proxied_rtt = sum(await _rtts(echo_proxy, count, 200))
                print(f"small messages (200 B, {count} sequential round trips): direct {count / direct_rtt:.0f}/s, "
                      f"proxied {count / proxied_rtt:.0f}/s, proxied/direct {direct_rtt / proxied_rtt:.2f}; "
                      f"added per round trip {1e6 * (proxied_rtt - direct_rtt) / count:.0f} us")
                clients, each = 20, (100 if quick else 500)

                async def parallel(port: int) -> float:
                    start = time.perf_counter()
                    await asyncio.gather(*(_rtts(port, each, 200) for _ in range(clients)))
                    return time.perf_counter() - start

                direct_par, proxied_par = await parallel(echo_port), await parallel(echo_proxy)
                total = clients * each
                print(f"small messages, {clients} connections in parallel: direct {total / direct_par:.0f}/s, "
                      f"proxied {total / proxied_par:.0f}/s, proxied/direct {direct_par / proxied_par:.2f}")
        finally:
            for name in names:
                await ctl.delete_proxy(name)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller transfers and fewer samples")
    parser.add_argument("--inprocess", action="store_true",
                        help="run the bundled server in this process (default: subprocess)")
    parser.add_argument("--endpoints", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.endpoints:
        await _endpoints_main(args.quick)
        return 0
    bundled = await resolve_backend(env={"PATH": ""}, bundled="inprocess" if args.inprocess else "subprocess",
                                    seed=1)
    try:
        await bench_backend("bundled", bundled, args.quick)
    finally:
        await bundled.stop()
    if os.environ.get("TOXIPROXY_URL") or any(
        os.access(os.path.join(d, "toxiproxy-server"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)
    ):
        real = await resolve_backend()
        try:
            await bench_backend(f"real ({real.kind})", real, args.quick)
        finally:
            await real.stop()
    else:
        print("\n(no real Toxiproxy: set TOXIPROXY_URL or put toxiproxy-server on PATH to compare)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
