"""Random chaos: deterministic expansion from the seed, valid specs for every kind, clear errors."""
from __future__ import annotations

import pytest

from comfy_chaos.harness.chaos import DEFAULT_KINDS, GENERATORS, Chaos, expand
from comfy_chaos.harness.scenario import ScenarioError, parse_scenario

SCENARIO = """
name: c
description: chaos test
seed: {seed}
workload: {{tasks: 6, workflow: basic}}
chaos: {chaos}
"""


def _dump(specs: list) -> list[dict]:
    return [s.model_dump(mode="json", exclude_unset=True) for s in specs]


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    chaos = Chaos(faults=8)
    first = _dump(expand(chaos, seed=7, tasks=6))
    assert first == _dump(expand(chaos, seed=7, tasks=6))
    others = [_dump(expand(chaos, seed=s, tasks=6)) for s in range(8, 12)]
    assert all(o != first for o in others)
    assert len(first) == 8


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_every_kind_generates_valid_specs_anchored_to_planned_tasks(kind: str) -> None:
    specs = expand(Chaos(faults=12, kinds=[kind]), seed=3, tasks=5)
    assert len(specs) == 12
    for spec in specs:
        assert spec.kind == ("toxic" if spec.toxic is not None else kind)
        task = spec.when.task or (spec.target.task if spec.target else None)
        assert spec.when.at is not None or task in {"t0", "t1", "t2", "t3"}, "never the last task (t4)"


def test_every_fault_kind_of_the_registry_can_be_drawn() -> None:
    """A kind added to the registry without a generator would never meet a client in chaos."""
    from comfy_chaos.fake_comfy.faults.kinds import KINDS

    assert set(KINDS) - {"toxic"} <= set(GENERATORS)


def test_default_kinds_leave_out_restart() -> None:
    assert "restart" not in DEFAULT_KINDS
    kinds = {s.kind for s in expand(Chaos(faults=100), seed=1, tasks=4)}
    assert "restart" not in kinds and len(kinds) > 10


def test_scenario_expands_chaos_after_its_own_faults_with_the_seed() -> None:
    text = SCENARIO.format(seed=5, chaos="{faults: 3, kinds: [drop, abort]}")
    text += "faults:\n  - kind: noise\n    when: {at: 0}\n"
    scenario = parse_scenario(text)
    schedule = scenario.fault_schedule()
    assert [s.kind for s in schedule][0] == "noise" and len(schedule) == 4
    assert {s.kind for s in schedule[1:]} <= {"drop", "abort"}
    reseeded = scenario.model_copy(update={"seed": 6}).fault_schedule()
    assert _dump(reseeded[1:]) == _dump(expand(scenario.chaos, seed=6, tasks=6))
    assert scenario.from_dict(scenario.to_dict()).fault_schedule() == schedule


def test_unknown_chaos_kind_is_named_with_its_line() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(SCENARIO.format(seed=1, chaos="{faults: 2, kinds: [drop, nope]}"), source="x.yaml")
    message = str(info.value)
    assert "x.yaml: chaos.kinds" in message and "nope" in message and "(line 6)" in message


@pytest.mark.parametrize("stored", [True, False])
def test_scorer_names_expanded_chaos_faults(stored: bool) -> None:
    """An unfired chaos fault is named by kind and trigger in the reasons, not as '?': from
    the expanded schedule the runner stores, or (an older record) expanded from the seed."""
    from comfy_chaos.harness.record import RunRecord, ScheduledFault
    from comfy_chaos.harness.scoring import score

    scenario = parse_scenario(SCENARIO.format(seed=9, chaos="{faults: 3}"))
    expected = _dump(scenario.fault_schedule())
    record = RunRecord(scenario=scenario.to_dict(), client="x", seed=9, time_scale=0.1,
                       scheduled=list(range(len(expected))),
                       schedule=ScheduledFault.of(expected) if stored else [])
    reasons = "\n".join(score(record).reasons)
    for index, spec in enumerate(expected):
        assert f"faults[{index}] ({spec['kind']}, when {spec['when']}) never fired" in reasons
