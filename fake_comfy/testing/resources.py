"""A snapshot of what this process holds (Linux /proc): file descriptors, live child
processes, listening sockets and asyncio tasks. Take one before and one after a run and
`before.diff(after)` lists anything left behind; the leak tests and benchmarks/leak_check.py
use it."""
from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from typing import Any

__all__ = ["Resources", "listening", "snapshot"]

@dataclass(frozen=True)
class Resources:
    """What this process holds right now (Linux /proc): the leak checks compare two of these."""

    fds: int
    children: tuple[int, ...]
    listening: tuple[str, ...]  # "host:port" of TCP sockets in LISTEN owned by this process
    tasks: tuple[str, ...]  # names/coroutines of the running loop's unfinished tasks, sorted

    def diff(self, later: Resources) -> list[str]:
        """Human-readable growth from `self` to `later` (empty: nothing leaked)."""
        out = []
        if later.fds > self.fds:
            out.append(f"file descriptors {self.fds} → {later.fds}: {_fd_targets()}")
        if extra := sorted(set(later.children) - set(self.children)):
            out.append(f"child processes left: {[_cmdline(pid) for pid in extra]}")
        if sockets := sorted(set(later.listening) - set(self.listening)):
            out.append(f"listening sockets left: {sockets}")
        if len(later.tasks) > len(self.tasks):
            out.append(f"asyncio tasks {len(self.tasks)} → {len(later.tasks)}: {sorted(later.tasks)}")
        return out


def snapshot() -> Resources:
    """Count fds, live child processes, listening sockets and asyncio tasks of this process."""
    try:
        loop_tasks = asyncio.all_tasks()
        current = asyncio.current_task()
    except RuntimeError:  # no running loop
        loop_tasks, current = set(), None
    tasks = tuple(sorted(_task_label(t) for t in loop_tasks if t is not current and not t.done()))
    return Resources(len(os.listdir("/proc/self/fd")), _children(), listening(), tasks)


def _task_label(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", repr(coro))


def _children() -> tuple[int, ...]:
    pids: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as fh:
                pids.extend(int(p) for p in fh.read().split())
        except FileNotFoundError:
            continue
    live = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if state != "Z":  # a zombie holds no resources but its pid; reaped by the next wait()
            live.append(pid)
    return tuple(sorted(live))


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return f"{pid}: " + fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except FileNotFoundError:
        return f"{pid}: (gone)"


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def listening() -> tuple[str, ...]:
    """"host:port" of the TCP sockets in LISTEN that this process owns."""
    mine = _socket_inodes()
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                lines = fh.readlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in mine:  # 0A = TCP_LISTEN
                host, port = local.split(":")
                if len(host) == 8:  # IPv4, little-endian hex
                    host = socket.inet_ntoa(bytes.fromhex(host)[::-1])
                found.append(f"{host}:{int(port, 16)}")
    return tuple(sorted(found))


def _fd_targets() -> list[str]:
    out = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            out.append(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            continue
    return out
