"""Per-run JSON-lines event logs, and the structlog set-up that feeds them.

Several runs share one event loop (`comfy-chaos run -j 2`), and the fake server, the
runner and an in-process client all log through structlog. A run opens a `RunLog`; the
`capture` processor writes every event logged from inside that run (its asyncio tasks
inherit the context variable) to the run's own file, whatever the console shows. The
console keeps its own level: `configure(console_level)` drops quieter events only after
they were captured.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar, Token
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TextIO

import structlog

_current: ContextVar[RunLog | None] = ContextVar("comfy_chaos_run_log", default=None)


class RunLog:
    """Open a JSON-lines file and route the current context's events to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._token: Token[RunLog | None] | None = None

    def __enter__(self) -> RunLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self._token = _current.set(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._token is not None:
            _current.reset(self._token)
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, event_dict: Mapping[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(event_dict, default=repr) + "\n")


def log_path(log_dir: Path, scenario: str, client: str, seed: int) -> Path:
    """`<log_dir>/<scenario>--<client>--seed<N>.jsonl`, with unsafe characters replaced."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{scenario}--{client}--seed{seed}")
    return log_dir / f"{safe}.jsonl"


def capture(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    run_log = _current.get()
    if run_log is not None:
        run_log.write(event_dict)
    return event_dict


def _console_filter(level: int) -> structlog.types.Processor:
    def drop_quiet(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if logging.getLevelNamesMapping().get(str(event_dict.get("level", "info")).upper(), logging.INFO) < level:
            raise structlog.DropEvent
        return event_dict

    return drop_quiet


def configure(console_level: int, stream: TextIO | None = None) -> None:
    """Structlog for a harness process: INFO and above captured per run, `console_level` shown."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            capture,
            _console_filter(console_level),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(min(console_level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
