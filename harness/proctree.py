"""Find and kill process trees on Linux through /proc, including descendants that left
their process group with setsid().

A process-group kill misses a grandchild that called setsid(): it has its own group and
session. `descendants(pid)` walks the parent links in /proc instead, and
`become_subreaper()` makes orphans of this process's subtree re-parent to this process
(not to init), so a final `kill_descendants(os.getpid())` finds even those whose parent
died first. On other systems these are no-ops (the process-group kill still applies).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36
REAP_TIMEOUT_S = 5.0


def become_subreaper() -> bool:
    """Orphans of this process's subtree re-parent here (Linux >= 3.4); True if set."""
    if not os.path.isdir("/proc/self") or not hasattr(os, "getpid"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time in clock ticks) of `pid`, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
        return None
    return int(fields[1]), fields[0].decode(), int(fields[19])


def _parents() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except FileNotFoundError:
        return children
    for name in entries:
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(name))
    return children


def descendants(pid: int) -> list[tuple[int, int]]:
    """Every live descendant of `pid` as (pid, start time), parents before children."""
    tree = _parents()
    found: list[tuple[int, int]] = []
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop(0)
        stat = _stat(child)
        if stat is None:
            continue
        if stat[1] != "Z":
            found.append((child, stat[2]))
        todo.extend(tree.get(child, []))
    return found


def kill(processes: list[tuple[int, int]], sig: int = signal.SIGKILL) -> None:
    """Signal each (pid, start time) still alive; a recycled pid (other start time) is spared."""
    for pid, started in processes:
        stat = _stat(pid)
        if stat is None or stat[2] != started:
            continue
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            continue


def kill_descendants(pid: int) -> list[tuple[int, int]]:
    """SIGKILL every descendant of `pid`; returns what was signalled. Our own children that
    died are reaped (a subreaper inherits zombies nobody else waits for)."""
    found = descendants(pid)
    kill(found)
    if pid == os.getpid():
        _reap([p for p, _ in found])
    return found


def _reap(pids: list[int]) -> None:
    deadline = time.monotonic() + REAP_TIMEOUT_S
    waiting = set(pids)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            stat = _stat(pid)
            if stat is None:
                waiting.discard(pid)
                continue
            if stat[0] != os.getpid():
                if stat[1] == "Z":  # someone else's zombie: gone as far as we are concerned
                    waiting.discard(pid)
                continue
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                waiting.discard(pid)
                continue
            if done:
                waiting.discard(pid)
        if waiting:
            time.sleep(0.01)  # polling the kernel's process table, bounded by the deadline


def alive(processes: list[tuple[int, int]]) -> list[int]:
    """The pids of `processes` that still run (not zombies, not recycled)."""
    out = []
    for pid, started in processes:
        stat = _stat(pid)
        if stat is not None and stat[2] == started and stat[1] != "Z":
            out.append(pid)
    return out
