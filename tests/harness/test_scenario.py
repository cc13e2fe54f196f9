"""Scenario model and loader: defaults, plan, and errors that name file, field and expectation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfy_chaos.harness import workflows
from comfy_chaos.harness.scenario import (
    Scenario,
    ScenarioError,
    load_scenario,
    load_scenarios,
    parse_scenario,
    schema_text,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(text: str, source: str = "scenarios/x.yaml") -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, source=source)
    assert str(info.value).splitlines() == [f"{source}: {p}" for p in info.value.problems]
    return info.value.problems


def test_minimal_file_gets_the_contract_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "seed: 7\n", name="drop-completion.yaml"))
    assert scenario.name == "drop-completion"
    assert scenario.source == str(tmp_path / "drop-completion.yaml")
    assert (scenario.seed, scenario.time_scale, scenario.clients) == (7, 0.1, 1)
    assert scenario.workload.tasks == 10 and scenario.workload.workflow == "basic"
    assert scenario.workload.submit.pattern == "burst"
    assert scenario.faults == [] and scenario.deadline == 60 and scenario.grace == 5
    e = scenario.expect
    assert (e.completeness, e.lost, e.phantom, e.duplicate, e.duplicate_execution, e.wrong_outcome) == (1.0, 0, 0, 0, 0, 0)
    assert e.hang is False and e.p95_latency is None


def test_fault_specs_are_parsed_with_the_fault_layer_model() -> None:
    scenario = parse_scenario(
        "faults:\n"
        "  - kind: drop\n"
        "    when: {on: message, type: execution_success, task: t3}\n"
        "  - kind: toxic\n"
        "    when: {at: 2.0}\n"
        "    duration: 1.5\n"
        "    toxic: {type: timeout, stream: downstream, attributes: {timeout: 0}}\n"
    )
    drop, toxic = scenario.faults
    assert type(drop).__module__ == "comfy_chaos.fake_comfy.faults.spec"
    assert drop.when.on == "message" and drop.when.type == "execution_success" and drop.when.task == "t3"
    assert toxic.toxic.type == "timeout" and toxic.duration == 1.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "faults:\n  - kind: drop\n  - kind: drop\n  - kind: drop\n    probability: 1.5\n",
            "faults[2].probability: expected a number in [0, 1], got 1.5 (line 5)",
        ),
        ("workload: {tasks: 0}\n", "workload.tasks: expected an integer in [1, 20000], got 0 (line 1)"),
        ("deadline: soon\n", 'deadline: expected a number, got "soon" (line 1)'),
        ("clients: 1.5\n", "clients: expected an integer, got 1.5 (line 1)"),
        ("expect: {hang: maybe}\n", 'expect.hang: expected true or false, got "maybe" (line 1)'),
        ("expect: {completeness: 2}\n", "expect.completeness: expected a number in [0, 1], got 2 (line 1)"),
        ("seed: 1\ntiemout: 3\n", "tiemout: unexpected field, got 3 (line 2)"),
        ("faults:\n  - probability: 0.5\n", "faults[0].kind: expected a value (required), got nothing (line 2)"),
        ("faults:\n  - kind: drop\n    when: {at: -1}\n", "faults[0].when.at: expected a number >= 0, got -1 (line 3)"),
        (
            "workload: {submit: {pattern: interval}}\n",
            "workload.submit: expected interval (seconds) with pattern: interval, got nothing (line 1)",
        ),
        (
            "workload: {submit: {pattern: poisson}}\n",
            "workload.submit.pattern: expected 'burst' or 'interval', got \"poisson\" (line 1)",
        ),
    ],
)
def test_errors_name_the_field_the_expectation_and_the_value(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_unknown_workflow_names_the_choices() -> None:
    (line,) = problems("workload: {workflow: nope}\n")
    assert line.startswith("workload.workflow: expected a workflow name (")
    assert all(name in line for name in workflows.WORKFLOW_NAMES) and line.endswith('got "nope" (line 1)')


def test_bad_inline_workflow_and_bad_mix_entry() -> None:
    lines = problems(
        "workload:\n"
        "  workflow: {'1': {inputs: {}}}\n"
        "  mix: [{workflow: basic, weight: 0}]\n"
    )
    assert lines == [
        "workload.workflow: expected an inline API-format workflow: node '1' to be a mapping with a string class_type"
        " (line 2)",
        "workload.mix[0].weight: expected a number > 0, got 0 (line 3)",
    ]


def test_unknown_fault_kind_is_reported_at_its_index() -> None:
    (line,) = problems("faults:\n  - kind: drop\n  - kind: nosuch\n")
    assert line.startswith("faults[1]: unknown fault kind 'nosuch'")


def test_all_problems_are_reported_at_once() -> None:
    assert len(problems("seed: x\ndeadline: -1\nbogus: 1\n")) == 3


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\nworkload: [1, 2\nfaults: []\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 3, column ") and "YAML syntax error" in message


def test_top_level_must_be_a_mapping_and_file_must_exist(tmp_path: Path) -> None:
    assert problems("- 1\n- 2\n") == ["expected a mapping of scenario fields at the top level, got [1, 2]"]
    with pytest.raises(ScenarioError, match=r"missing\.yaml: cannot read file"):
        load_scenario(tmp_path / "missing.yaml")


def test_on_and_no_stay_strings_under_yaml_1_2_booleans() -> None:
    scenario = parse_scenario("description: no\nfaults:\n  - kind: close\n    when: {on: connect}\n")
    assert scenario.description == "no" and scenario.faults[0].when.on == "connect"


def test_plan_ids_clients_due_times_and_cache_busting() -> None:
    scenario = parse_scenario(
        "seed: 5\nclients: 2\nworkload: {tasks: 4, workflow: basic, submit: {pattern: interval, interval: 0.5}}\n"
    )
    plan = scenario.plan()
    assert [p.task_id for p in plan] == ["t0", "t1", "t2", "t3"]
    assert [p.client_index for p in plan] == [0, 1, 0, 1]
    assert [p.due for p in plan] == [0.0, 0.5, 1.0, 1.5]
    colours = {p.workflow["1"]["inputs"]["color"] for p in plan}
    assert len(colours) == 4, "tasks must differ so they do not hit the cache"
    assert plan[0].workflow is not scenario.plan()[0].workflow
    assert plan[0].workflow == scenario.plan()[0].workflow, "same seed, same plan"


def test_cached_workflow_is_identical_for_every_task() -> None:
    plan = parse_scenario("workload: {tasks: 3, workflow: cached}\n").plan()
    assert plan[0].workflow == plan[1].workflow == plan[2].workflow


def test_mix_follows_the_seed_and_uses_only_listed_workflows() -> None:
    text = "seed: {seed}\nworkload: {{tasks: 40, mix: [{{workflow: basic, weight: 3}}, {{workflow: error}}]}}\n"
    names = [p.workflow_name for p in parse_scenario(text.format(seed=1)).plan()]
    assert set(names) == {"basic", "error"}
    assert names == [p.workflow_name for p in parse_scenario(text.format(seed=1)).plan()]
    assert names.count("basic") > names.count("error")


def test_to_dict_round_trips_with_source() -> None:
    scenario = parse_scenario("seed: 3\nfaults: [{kind: drop, when: {at: 1}}]\n", source="scenarios/a.yaml")
    data = json.loads(json.dumps(scenario.to_dict()))
    assert data["source"] == "scenarios/a.yaml"
    again = Scenario.from_dict(data)
    assert again == scenario and again.source == "scenarios/a.yaml"


def test_load_scenarios_walks_a_directory(tmp_path: Path) -> None:
    write(tmp_path, "seed: 1\n", name="b.yaml")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "seed: 2\n", name="a.yaml")
    assert [s.name for s in load_scenarios(tmp_path)] == ["b", "a"]


def test_committed_schema_is_up_to_date() -> None:
    committed = (REPO / "scenarios" / "scenario.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), "regenerate: python -m comfy_chaos.harness.scenario --schema > scenarios/scenario.schema.json"


def test_schema_describes_the_fields_and_forbids_extras() -> None:
    schema = json.loads(schema_text())
    assert schema["additionalProperties"] is False
    assert {"name", "seed", "workload", "faults", "deadline", "grace", "expect"} <= set(schema["properties"])
    assert "FaultSpec" in schema["$defs"]


def test_every_library_scenario_loads() -> None:
    for path in sorted((REPO / "scenarios").rglob("*.yaml")):
        load_scenario(path)
