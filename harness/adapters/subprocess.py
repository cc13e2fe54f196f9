"""Run a client under test as a child process speaking JSON lines (docs/adapters.md).

The harness must survive any child: every read is bounded, the child gets its own
process group so teardown kills everything it spawned, and exit status and CPU time are
taken from `wait4` on the child (reaped by a dedicated thread, not asyncio's watcher).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from typing import Any

import structlog

from comfy_chaos.harness import proctree
from comfy_chaos.harness.adapters.base import AdapterSession, Unscalable

log = structlog.get_logger(__name__)

MAX_LINE = 16 * 1024 * 1024
READY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 5.0
STDERR_TAIL = 4096


# A client that floods `submitted`, `result` or `stats` lines must not grow the harness or
# the run record without bound (notes are capped in AdapterSession.note). Per client
# instance, per type: a few times the task count is more than any honest client sends.
FLOOD_PER_TASK = 4
FLOOD_SLACK = 64
MAX_STATS = 1000
MAX_STAT_KEYS = 64
MAX_OUTPUTS_CHARS = 256 * 1024
MAX_DETAIL_CHARS = 4096


class _FloodGuard:
    """Counts each message type and says, once per type, when a client went past its cap."""

    def __init__(self, session: AdapterSession) -> None:
        per_task = FLOOD_PER_TASK * max(1, session.max_concurrency) + FLOOD_SLACK
        self.limits = {"submitted": per_task, "result": per_task, "stats": MAX_STATS}
        self.seen: dict[str, int] = {}
        self.session = session

    def admit(self, kind: str) -> bool:
        limit = self.limits.get(kind)
        if limit is None:
            return True
        count = self.seen[kind] = self.seen.get(kind, 0) + 1
        if count == limit + 1:
            self.session.note(f"flood: more than {limit} {kind!r} messages from this client; the rest are dropped")
        return count <= limit


def _bounded_outputs(outputs: Any, session: AdapterSession) -> Any:
    if outputs is None:
        return None
    size = len(json.dumps(outputs, default=str))
    if size <= MAX_OUTPUTS_CHARS:
        return outputs
    session.note(f"flood: a result's outputs were {size} characters (at most {MAX_OUTPUTS_CHARS}); dropped")
    return {"_dropped": f"{size} characters"}


def _bounded_counters(counters: dict[str, Any]) -> dict[str, Any]:
    kept = {}
    for key, value in list(counters.items())[:MAX_STAT_KEYS]:
        if isinstance(value, str):
            value = value[:200]
        elif not isinstance(value, (int, float, bool)) and value is not None:
            value = str(value)[:200]
        kept[str(key)[:64]] = value
    return kept


class AdapterProtocolError(Exception):
    """The child broke the JSON-lines protocol in a way the harness cannot read past."""


class SubprocessAdapter:
    """An adapter that is a command line; `name` defaults to the command's first word."""

    scalable = True

    def __init__(
        self, argv: list[str], name: str | None = None, scalable: bool = True, *, scalable_declared: bool = False
    ) -> None:
        if not argv:
            raise ValueError("subprocess adapter: empty command")
        self.argv = list(argv)
        self.name = name or os.path.basename(argv[0])
        self.scalable = scalable
        # False: nobody said whether the client's timers scale (a `cmd:` client); its ready
        # line may still say so, else the runner looks for fixed timers on the control run.
        self.scalable_declared = scalable_declared

    @classmethod
    def from_command(cls, command: str, name: str | None = None) -> SubprocessAdapter:
        return cls(shlex.split(command), name=name or f"cmd:{command}")

    async def run(self, session: AdapterSession) -> None:
        self._done = False
        child = _Child(self.argv)
        await child.start()
        try:
            await self._converse(child, session)
        finally:
            await child.stop()
            info = session.info
            info.exit_code, info.cpu_s, info.stderr_tail = child.exit_code, child.cpu_s, child.stderr_tail()
            if child.exit_code not in (0, None) and not child.killed_by_us:
                info.crashed = True
            if info.ended is None:
                info.ended = (
                    "killed by the harness" if child.killed_by_us
                    else f"exited with code {child.exit_code}" + (" after done" if self._done else " without done")
                )
                info.ended_at = session.clock()

    async def _converse(self, child: _Child, session: AdapterSession) -> None:
        guard = _FloodGuard(session)
        await child.send(
            {
                "type": "start",
                "base_url": session.base_url,
                "time_scale": session.time_scale,
                "deadline_s": session.deadline_s,
                "max_concurrency": session.max_concurrency,
                "client_index": session.client_index,
            }
        )
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                while True:
                    message = await child.receive()
                    if message is None:
                        session.crash(f"exited before ready (exit code {await child.wait_exit()}): {child.stderr_tail()}")
                        return
                    if self._dispatch(message, session, guard) == "ready":
                        break
        except TimeoutError:
            session.crash(f"no ready within {READY_TIMEOUT_S:.0f} s")
            return
        if session.info.scalable is False and session.time_scale != 1.0:
            raise Unscalable(self.name)
        feeder = asyncio.create_task(self._feed(child, session))
        try:
            while True:
                message = await child.receive()
                if message is None:
                    code = await child.wait_exit()
                    session.crash(f"exited without done (exit code {code}): {child.stderr_tail()}")
                    return
                if self._dispatch(message, session, guard) == "done":
                    self._done = True
                    break
        except AdapterProtocolError as exc:
            session.crash(f"protocol error: {exc}")
            return
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
        child.close_stdin()
        try:
            async with asyncio.timeout(EXIT_TIMEOUT_S):
                await child.wait_exit()
        except TimeoutError:
            session.note(f"adapter did not exit within {EXIT_TIMEOUT_S:.0f} s after done; killed")

    async def _feed(self, child: _Child, session: AdapterSession) -> None:
        try:
            async for task in session.tasks():
                await child.send({"type": "task", "task_id": task.task_id, "workflow": task.workflow})
            await child.send({"type": "end"})
        except (BrokenPipeError, ConnectionResetError):
            return  # the reader sees the exit and records it

    def _dispatch(self, message: dict[str, Any], session: AdapterSession, guard: _FloodGuard | None = None) -> str | None:
        kind = message.get("type")
        if guard is not None and not guard.admit(str(kind)):
            return None
        try:
            if kind == "ready":
                session.ready(str(message.get("client", self.name)), message.get("version"), message.get("caps"))
                if isinstance(message.get("scalable"), bool):
                    session.info.scalable = message["scalable"]
            elif kind == "submitted":
                session.submitted(str(message["task_id"]), str(message["prompt_id"]))
            elif kind == "result":
                detail = message.get("detail")
                session.result(
                    str(message["task_id"])[:MAX_DETAIL_CHARS],
                    str(message["outcome"])[:MAX_DETAIL_CHARS],
                    outputs=_bounded_outputs(message.get("outputs"), session),
                    detail=None if detail is None else str(detail)[:MAX_DETAIL_CHARS],
                    prompt_id=message.get("prompt_id"),
                )
            elif kind == "note":
                session.note(str(message.get("text", "")))
            elif kind == "stats":
                session.stats(_bounded_counters(dict(message.get("counters") or {})))
            elif kind == "done":
                session.done()
            else:
                session.note(f"protocol: unknown message type {kind!r}")
        except (KeyError, TypeError, ValueError) as exc:
            session.note(f"protocol: bad {kind!r} message ({exc!r}): {json.dumps(message)[:300]}")
            return None
        return kind


class _Child:
    """One child process: JSON lines in and out, stderr tail, exit status and rusage."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.exit_code: int | None = None
        self.cpu_s: float | None = None
        self.killed_by_us = False
        self._stderr: collections.deque[bytes] = collections.deque()
        self._stderr_len = 0
        self._exited: asyncio.Future[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env=env,
            )
        except OSError as exc:
            raise AdapterProtocolError(f"cannot start {self.argv!r}: {exc}") from exc
        self._exited = loop.create_future()
        threading.Thread(target=self._reap, args=(loop,), daemon=True, name=f"reap-{self._proc.pid}").start()
        try:
            self._stdout = asyncio.StreamReader(limit=MAX_LINE)
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self._stdout), self._proc.stdout)
            stderr = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stderr), self._proc.stderr)
            self._stderr_task = asyncio.create_task(self._drain_stderr(stderr))
            transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, self._proc.stdin)
            self._writer = asyncio.StreamWriter(transport, protocol, None, loop)
        except BaseException:
            # Cancelled (Ctrl-C) or failed between spawn and hand-over: nobody else knows
            # the process yet, so it must not outlive this call.
            self.killed_by_us = True
            self._kill_group(signal.SIGKILL)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(EXIT_TIMEOUT_S):
                    await asyncio.shield(self._exited)
            raise

    def _reap(self, loop: asyncio.AbstractEventLoop) -> None:
        _, status, usage = os.wait4(self._proc.pid, 0)
        self._proc.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from reaping again
        self.exit_code = self._proc.returncode
        self.cpu_s = usage.ru_utime + usage.ru_stime
        exited = self._exited
        if exited is not None:
            loop.call_soon_threadsafe(_resolve, exited)

    async def _drain_stderr(self, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(65536):
            self._stderr.append(chunk)
            self._stderr_len += len(chunk)
            while self._stderr_len - len(self._stderr[0]) >= STDERR_TAIL:
                self._stderr_len -= len(self._stderr.popleft())

    def stderr_tail(self) -> str:
        return b"".join(self._stderr)[-STDERR_TAIL:].decode("utf-8", "replace")

    async def send(self, message: dict[str, Any]) -> None:
        self._writer.write(json.dumps(message).encode() + b"\n")
        await self._writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        """The next message, or None at end of output. Non-object lines raise."""
        while True:
            try:
                line = await self._stdout.readline()
            except (ValueError, asyncio.LimitOverrunError) as exc:
                raise AdapterProtocolError(f"line longer than {MAX_LINE} bytes") from exc
            if not line:
                return None
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError as exc:
                raise AdapterProtocolError(f"not JSON: {line[:200]!r}") from exc
            if not isinstance(message, dict):
                raise AdapterProtocolError(f"not a JSON object: {line[:200]!r}")
            return message

    def close_stdin(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()

    async def wait_exit(self) -> int | None:
        assert self._exited is not None
        await asyncio.shield(self._exited)
        return self.exit_code

    def _kill_group(self, sig: int) -> None:
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass

    async def stop(self) -> None:
        """Close stdin, kill the process group if it is still running, wait for the reaper."""
        assert self._exited is not None
        self.close_stdin()
        escaped = proctree.descendants(self._proc.pid)  # also those that left the group with setsid()
        if not self._exited.done():
            self.killed_by_us = True
            self._kill_group(signal.SIGKILL)
        try:
            async with asyncio.timeout(EXIT_TIMEOUT_S):
                await asyncio.shield(self._exited)
        except TimeoutError:
            log.error("adapter.subprocess.unreaped", pid=self._proc.pid)
        self._kill_group(signal.SIGKILL)  # grandchildren left behind by an exited child
        proctree.kill(escaped)
        self._stderr_task.cancel()
        await asyncio.gather(self._stderr_task, return_exceptions=True)
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()


def _resolve(future: asyncio.Future[None]) -> None:
    """Set `future`'s result unless it is already done (called on the loop's thread)."""
    if not future.done():
        future.set_result(None)


def python_command(*args: str) -> list[str]:
    """argv running this interpreter, for adapters written in Python."""
    return [sys.executable, *args]

