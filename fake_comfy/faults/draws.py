"""How random chaos draws a fault of each kind: pure functions (rng, task) → a spec dict.

A kind's draw lives in its registry entry (`Kind.draw` in `kinds.py`), so a new kind is one
entry; `harness.chaos` expands a scenario's `chaos:` field from these. Every draw anchors
its fault to a moment every run has (a task's start, one of its first two node starts, its
completion, or time 0 for the burst's submissions) rather than to a frame that a
disconnected client might never be sent, and keeps parameters in ranges a correct client
survives.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

Draw = Callable[[random.Random, str], dict[str, Any]]
ParamsDraw = Callable[[random.Random], dict[str, Any]]

FRAME_TYPES = ("executing", "executed", "execution_success", "executing:null", "execution_start")
"""Message types every task of the named workflows receives (targets of frame/message faults)."""

ERROR_STATUSES = (500, 502, 503, 504)
ERROR_BODIES = ("comfy", "html", "empty")


def anchor(rng: random.Random, task: str) -> dict[str, Any]:
    """A trigger that fires once in every run for `task`: its start or one of its first two nodes."""
    choice = rng.randrange(3)
    if choice == 0:
        return {"on": "task_start", "task": task}
    return {"on": "node_start", "task": task, "node_index": choice - 1}


def frame(kind: str, params: ParamsDraw | None = None) -> Draw:
    """A frame/message fault hitting one frame of a chosen type of the task."""

    def draw(rng: random.Random, task: str) -> dict[str, Any]:
        frame_type = rng.choice(FRAME_TYPES)
        spec: dict[str, Any] = {
            "kind": kind,
            "when": {"on": "task_start", "task": task},
            "target": {"task": task, "type": frame_type},
            "count": 1,
        }
        if params is not None:
            spec["params"] = params(rng)
        return spec

    return draw


def connection(kind: str, params: ParamsDraw | None = None) -> Draw:
    """A connection fault (close, abort) at one of the task's anchors."""

    def draw(rng: random.Random, task: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"kind": kind, "when": anchor(rng, task)}
        if params is not None:
            spec["params"] = params(rng)
        return spec

    return draw


def window(kind: str, lo: int, hi: int) -> Draw:
    """A connection window (silent, refuse) of lo..hi scenario seconds from one of the task's anchors."""

    def draw(rng: random.Random, task: str) -> dict[str, Any]:
        return {"kind": kind, "when": anchor(rng, task), "duration": float(rng.randint(lo, hi))}

    return draw


def close_code(rng: random.Random) -> dict[str, Any]:
    return {"code": rng.choice([1001, 1011, 1012, 4000])}


def http_error(rng: random.Random, task: str) -> dict[str, Any]:
    """5xx on /history for a few seconds from the task's completion."""
    return {
        "kind": "http_error",
        "when": {"on": "task_complete", "task": task},
        "duration": float(rng.randint(2, 10)),
        "params": {"route": "/history", "status": rng.choice(ERROR_STATUSES), "body": rng.choice(ERROR_BODIES)},
    }


def http_slow(rng: random.Random, task: str) -> dict[str, Any]:
    return {
        "kind": "http_slow",
        "when": {"on": "task_start", "task": task},
        "duration": float(rng.randint(3, 10)),
        "params": {"route": "/history", "delay": round(rng.uniform(0.5, 3.0), 1)},
    }


def http_truncate(rng: random.Random, task: str) -> dict[str, Any]:
    """One /history reply cut short after the task's completion."""
    return {
        "kind": "http_truncate",
        "when": {"on": "task_complete", "task": task},
        "count": 1,
        "params": {"route": "/history", "at": rng.choice([None, 0, 1, rng.randint(2, 64)])},
    }


def history_lag(rng: random.Random, task: str) -> dict[str, Any]:
    return {
        "kind": "history_lag",
        "when": {"on": "task_start", "task": task},
        "count": 1,
        "params": {"delay": round(rng.uniform(0.5, 3.0), 1)},
    }


def prompt_response_lost(rng: random.Random, task: str) -> dict[str, Any]:
    # Burst submissions all happen at the start: only a time trigger at 0 meets one.
    return {"kind": "prompt_response_lost", "when": {"at": 0}, "count": 1}


def prompt_queued_5xx(rng: random.Random, task: str) -> dict[str, Any]:
    # As for prompt_response_lost: the burst's POSTs all happen at the start.
    return {
        "kind": "prompt_queued_5xx",
        "when": {"at": 0},
        "count": 1,
        "params": {"status": rng.choice(ERROR_STATUSES), "body": rng.choice(ERROR_BODIES)},
    }


def restart(rng: random.Random, task: str) -> dict[str, Any]:
    return {"kind": "restart", "when": anchor(rng, task), "params": {"keep_history": True}}


def toxic(type_: str, attributes: ParamsDraw, lo: int, hi: int) -> Draw:
    """A Toxiproxy toxic of `type_` downstream for lo..hi scenario seconds from one of the task's anchors."""

    def draw(rng: random.Random, task: str) -> dict[str, Any]:
        return {
            "kind": "toxic",
            "when": anchor(rng, task),
            "duration": float(rng.randint(lo, hi)),
            "toxic": {"type": type_, "stream": "downstream", "attributes": attributes(rng)},
        }

    return draw
