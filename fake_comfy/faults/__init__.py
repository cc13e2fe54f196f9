"""Fault layer of the fake server (Contract 3): kinds, schedule model, loader, engine.

`FaultEngine` is imported lazily so that `fake_comfy.faults.spec` (embedded in the
harness's scenario model) stays importable without pulling in aiohttp.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfy_chaos.fake_comfy.faults.kinds import KINDS
from comfy_chaos.fake_comfy.faults.loader import load_schedule
from comfy_chaos.fake_comfy.faults.spec import FaultConfigError, FaultSchedule, FaultSpec, Target, Trigger

if TYPE_CHECKING:
    from comfy_chaos.fake_comfy.faults.engine import FaultEngine

__all__ = [
    "KINDS",
    "FaultConfigError",
    "FaultEngine",
    "FaultSchedule",
    "FaultSpec",
    "Target",
    "Trigger",
    "load_schedule",
]


def __getattr__(name: str) -> Any:
    if name == "FaultEngine":
        from comfy_chaos.fake_comfy.faults.engine import FaultEngine

        return FaultEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
