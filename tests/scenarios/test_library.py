"""The scenario library: every file loads, is described, sits in a family folder; the
families the issue asks for are there; the committed JSON Schema matches the model."""
from __future__ import annotations

from pathlib import Path

import pytest

from comfy_chaos.harness.scenario import load_scenario, schema_text

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FILES = sorted(SCENARIOS.rglob("*.yaml"))


def test_library_has_at_least_40_scenarios() -> None:
    assert len(FILES) >= 40, [str(p) for p in FILES]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SCENARIOS)))
def test_scenario_loads_and_is_described(path: Path) -> None:
    scenario = load_scenario(path)
    assert path.parent != SCENARIOS, "scenarios live in a family folder"
    assert len(scenario.description.split()) >= 12, f"{path}: description should say what real failure it stands for"
    assert scenario.fault_schedule() or "baseline" in scenario.tags or path.parent.name == "baseline"


def test_names_are_unique() -> None:
    names = [load_scenario(p).name for p in FILES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_families_cover_the_fault_kinds() -> None:
    kinds = set()
    toxics = set()
    for path in FILES:
        for spec in load_scenario(path).fault_schedule():
            kinds.add(spec.kind)
            if spec.toxic is not None:
                toxics.add(spec.toxic.type)
    frame = {"bom", "junk_prefix", "python_repr", "truncate", "garble", "invalid_utf8", "concat",
             "heartbeat", "noise", "noise_binary", "oversize"}
    message = {"drop", "duplicate", "reorder", "delay", "strip_prompt_id"}
    other = {"abort", "close", "silent", "refuse", "restart", "http_error", "http_slow", "history_lag",
             "prompt_response_lost", "http_truncate"}
    assert frame | message | other <= kinds, sorted((frame | message | other) - kinds)
    assert {"reset_peer", "timeout", "latency", "bandwidth", "slicer", "limit_data"} <= toxics


def test_load_scenarios_and_a_slow_soak() -> None:
    scenarios = [load_scenario(p) for p in FILES]
    assert any(s.workload.tasks >= 1000 for s in scenarios)
    assert any(s.clients >= 50 for s in scenarios)
    assert any("slow" in s.tags for s in scenarios)
    assert sum(1 for s in scenarios if s.chaos is not None) >= 4


def test_committed_schema_is_current() -> None:
    assert (SCENARIOS / "scenario.schema.json").read_text(encoding="utf-8") == schema_text()
