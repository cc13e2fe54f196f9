"""Progress of a batch of runs: a line per finished run, and the count so far.

On a terminal a status line stays at the bottom and is redrawn every half second (done/total,
pass/fail/inconclusive so far, elapsed, ETA), so a long run is never silent; elsewhere (CI
logs, pipes) every finished run's line ends with the same count and ETA, nothing is redrawn.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, TextIO

REFRESH_S = 0.5


def result_line(result: Any, wall_s: float) -> str:
    """One finished run: verdict, scenario, client, seed, reported/completed, wall time,
    the problem tasks by class, and the replay command when it did not pass."""
    metrics = result.metrics
    line = (f"{result.verdict.upper():<12} {result.scenario} [{result.client}] seed {result.seed}  "
            f"{metrics.get('reported', 0)}/{metrics.get('server_completed', 0)} reported  {wall_s:.1f} s")
    by_class: dict[str, list[str]] = {}
    for task in result.tasks:
        if task.problems:
            by_class.setdefault(task.cls, []).append(task.task_id)
    if by_class:
        line += "  (" + "  ".join(f"{cls} {','.join(ids)}" for cls, ids in sorted(by_class.items())) + ")"
    if result.verdict != "pass":
        line += f"\n             replay: {result.replay}"
    return line


def describe_backend(info: dict[str, Any]) -> str:
    """`bundled 0.1.0 (inprocess) at http://127.0.0.1:PORT` from the backend's description."""
    words = [str(info.get("kind", "?"))]
    if info.get("version"):
        words.append(str(info["version"]))
    if info.get("mode"):
        words.append(f"({info['mode']})")
    return " ".join(words) + f" at {info.get('url', '?')}"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Thread-safe: results arrive on the event loop's thread, the redraw runs on its own."""

    def __init__(self, total: int, stream: TextIO, *, live: bool | None = None, clock: Any = time.monotonic) -> None:
        self.total = total
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self.clock = clock
        self.started = clock()
        self.verdicts: Counter[str] = Counter()
        self.backend_info: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.live and total:
            self._ticker = threading.Thread(target=self._tick, name="comfy-chaos-progress", daemon=True)
            self._ticker.start()

    @property
    def done(self) -> int:
        return sum(self.verdicts.values())

    def status(self) -> str:
        """`[done/total] N pass, N fail, N inconclusive  elapsed  ETA`."""
        elapsed = self.clock() - self.started
        counts = ", ".join(f"{self.verdicts[v]} {v}" for v in ("pass", "fail", "inconclusive"))
        eta = "-" if not self.done else _duration(elapsed / self.done * (self.total - self.done))
        return f"[{self.done}/{self.total}] {counts}  elapsed {_duration(elapsed)}  ETA {eta}"

    def backend(self, info: dict[str, Any], url: str) -> None:
        self.backend_info = {"url": url, **info}
        self._print(f"comfy-chaos: toxiproxy {describe_backend(self.backend_info)}")

    def finished(self, result: Any, wall_s: float) -> None:
        with self._lock:
            self.verdicts[result.verdict] += 1
        line = result_line(result, wall_s)
        if not self.live:
            first, _, rest = line.partition("\n")
            line = f"{first}  {self.status()}" + (f"\n{rest}" if rest else "")
        self._print(line)

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
            with self._lock:
                self.stream.write("\r\x1b[K")
                self.stream.flush()

    def _print(self, line: str) -> None:
        with self._lock:
            if self.live:
                self.stream.write("\r\x1b[K")
            self.stream.write(line + "\n")
            if self.live and not self._stop.is_set():
                self.stream.write(self.status())
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(REFRESH_S):
            with self._lock:
                self.stream.write("\r\x1b[K" + self.status())
                self.stream.flush()
