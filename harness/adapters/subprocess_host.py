"""Run any in-process adapter behind the JSON-lines protocol (docs/adapters.md).

    python -m comfy_chaos.harness.adapters.subprocess_host reference

This isolates a Python client in its own process (the harness then measures its exit
code, CPU time and hangs) and is a complete example of the protocol's adapter side.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from typing import Any

import structlog

from comfy_chaos.harness.adapters import load_adapter
from comfy_chaos.harness.adapters.base import AdapterSession, Task

_PASS_THROUGH = {"submitted", "result", "note", "done"}


_PROTOCOL: list[Any] = []  # the real stdout, once `_reserve_stdout` has moved everything else


def _reserve_stdout() -> None:
    """Keep fd 1 for protocol lines only: anything else that writes to stdout (a library's
    print, structlog's default logger) goes to stderr instead."""
    _PROTOCOL.append(os.fdopen(os.dup(1), "wb", buffering=0))
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def _emit(message: dict[str, Any]) -> None:
    _PROTOCOL[0].write(json.dumps(message).encode() + b"\n")


_SCALABLE: list[bool] = []  # the hosted adapter's `scalable`, said in the ready line


def _to_wire(report: dict[str, Any]) -> dict[str, Any] | None:
    kind = report["type"]
    if kind == "ready":
        ready = {"type": "ready", "client": report["client"], "version": report["version"], "caps": report["caps"]}
        if _SCALABLE:
            ready["scalable"] = _SCALABLE[0]
        return ready
    if kind == "stats":
        return {"type": "stats", "counters": report["counters"]}
    if kind == "crash":
        return {"type": "note", "text": f"crash: {report.get('detail')}"}
    if kind not in _PASS_THROUGH:
        return None
    message: dict[str, Any] = {"type": kind}
    if kind == "note":
        message["text"] = report.get("detail") or ""
        return message
    for key in ("task_id", "prompt_id", "outcome", "outputs", "detail"):
        if report.get(key) is not None:
            message[key] = report[key]
    return message


def _sink(report: dict[str, Any]) -> None:
    message = _to_wire(report)
    if message is not None:
        _emit(message)


async def _lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def host(name: str) -> int:
    adapter = load_adapter(name)
    _SCALABLE[:] = [bool(adapter.scalable)]
    reader = await _lines()
    first = await reader.readline()
    if not first:
        return 0
    start = json.loads(first)
    if start.get("type") != "start":
        print(f"subprocess_host: expected a start message, got {first[:200]!r}", file=sys.stderr)
        return 3
    session = AdapterSession(
        base_url=start["base_url"],
        time_scale=float(start.get("time_scale", 1.0)),
        deadline_s=float(start.get("deadline_s", 60.0)),
        max_concurrency=int(start.get("max_concurrency", 1)),
        client_index=int(start.get("client_index", 0)),
        sink=_sink,
    )
    run = asyncio.create_task(adapter.run(session))
    stdin_closed = asyncio.Event()

    async def pump() -> None:
        while line := await reader.readline():
            message = json.loads(line)
            if message.get("type") == "task":
                session.feed(Task(str(message["task_id"]), message["workflow"]))
            elif message.get("type") == "end":
                session.end()
        session.end()
        stdin_closed.set()

    pumping = asyncio.create_task(pump())
    closed = asyncio.create_task(stdin_closed.wait())
    await asyncio.wait([run, closed], return_when=asyncio.FIRST_COMPLETED)
    if not run.done():  # the harness closed stdin: stop now
        run.cancel()
    pumping.cancel()
    closed.cancel()
    await asyncio.gather(pumping, closed, return_exceptions=True)
    try:
        await run
    except asyncio.CancelledError:
        return 0
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m comfy_chaos.harness.adapters.subprocess_host <adapter name>", file=sys.stderr)
        return 3
    _reserve_stdout()
    return asyncio.run(host(argv[0]))


if __name__ == "__main__":
    sys.exit(main())
