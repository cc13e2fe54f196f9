"""Schedule model, loader and error messages."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from comfy_chaos.fake_comfy.faults import KINDS, FaultConfigError, FaultSchedule, FaultSpec, load_schedule

CONTRACT_KINDS = {
    "bom", "junk_prefix", "python_repr", "truncate", "garble", "invalid_utf8", "concat",
    "heartbeat", "noise", "noise_binary", "oversize", "drop", "duplicate", "reorder", "delay",
    "strip_prompt_id", "close", "abort", "silent", "refuse", "http_error", "http_slow",
    "http_truncate", "history_lag", "prompt_response_lost", "prompt_queued_5xx", "restart", "toxic",
}


def test_registry_has_exactly_the_contract_kinds_each_documented() -> None:
    assert set(KINDS) == CONTRACT_KINDS
    for kind in KINDS.values():
        assert kind.doc.strip(), kind.name
        if kind.category == "frame" and kind.name != "concat":
            assert kind.transform is not None, kind.name


def test_fault_model_modules_do_not_import_aiohttp() -> None:
    """spec/kinds/loader/planner (and the faults package) pull in no aiohttp: the planner is sans-IO; the parent package's
    own __init__ (the server) is bypassed so that only the fault layer is measured."""
    code = (
        "import sys, types, pathlib, comfy_chaos.fake_comfy.wire as _w\n"
        "import importlib.util as u\n"
        "pkg = types.ModuleType('comfy_chaos.fake_comfy'); pkg.__path__ = [str(pathlib.Path(_w.__file__).parent)]\n"
        "for name in [m for m in sys.modules if m == 'comfy_chaos.fake_comfy' or m.startswith(('comfy_chaos.fake_comfy.', 'aiohttp'))]:\n"
        "    del sys.modules[name]\n"
        "sys.modules['comfy_chaos.fake_comfy'] = pkg\n"
        "import comfy_chaos.fake_comfy.faults, comfy_chaos.fake_comfy.faults.spec, comfy_chaos.fake_comfy.faults.planner\n"
        "assert 'aiohttp' not in sys.modules, sorted(m for m in sys.modules if 'aiohttp' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"kind": "explode"}, ["fault #1", "'explode'", "unknown fault kind", "truncate"]),
        ({"kind": "truncate", "params": {"at": 0}}, ["fault #1", "'truncate'", "params.at", "greater than or equal to 1"]),
        ({"kind": "drop", "probability": 1.5}, ["fault #1", "probability", "less than or equal to 1"]),
        ({"kind": "drop", "probability": -0.1}, ["fault #1", "probability"]),
        ({"kind": "drop", "when": {"at": 1, "on": "message"}}, ["fault #1", "when", "exactly one"]),
        ({"kind": "drop", "when": {}}, ["fault #1", "when", "exactly one"]),
        ({"kind": "drop", "when": {"on": "frame", "type": "status"}}, ["when", "'on: frame' does not take ['type']"]),
        ({"kind": "drop", "when": {"on": "nonsense"}}, ["when.on", "nonsense"]),
        ({"kind": "drop", "when": {"at": 2, "nth": 3}}, ["when", "'at' takes no event filters"]),
        ({"kind": "drop", "params": {"at": 3}}, ["'drop'", "params.at", "Extra inputs"]),
        ({"kind": "close", "params": {"code": 1006}}, ["'close'", "params.code", "reserved"]),
        ({"kind": "invalid_utf8", "params": {"sequence": "41"}}, ["params.sequence", "valid UTF-8"]),
        ({"kind": "toxic"}, ["'toxic'", "needs a 'toxic:' block"]),
        ({"kind": "drop", "toxic": {"type": "timeout"}}, ["only for kind 'toxic'"]),
        ({"kind": "http_error", "params": {"status": 404}}, ["params.status", "greater than or equal to 500"]),
        ({"kind": "drop", "count": 0}, ["count"]),
    ],
)
def test_bad_entries_name_index_kind_field_and_expectation(entry: dict, expected: list[str]) -> None:
    with pytest.raises(FaultConfigError) as info:
        FaultSchedule.of([{"kind": "drop"}, entry])
    for fragment in expected:
        assert fragment in str(info.value)


def test_load_schedule_yaml_keeps_on_key_and_names_file(tmp_path) -> None:
    good = tmp_path / "faults.yaml"
    good.write_text(
        "- kind: drop\n"
        "  when: {on: message, type: [execution_success, 'executing:null'], task: t3}\n"
        "  count: 2\n"
        "- kind: silent\n"
        "  when: {at: 2.5}\n"
        "  duration: 3\n"
    )
    schedule = load_schedule(good)
    assert [f.kind for f in schedule.faults] == ["drop", "silent"]
    assert schedule.faults[0].when.on == "message"
    assert schedule.faults[0].when.types == ("execution_success", "executing:null")
    assert schedule.faults[1].effective_count is None  # duration without count: all while active

    bad = tmp_path / "bad.yaml"
    bad.write_text("faults:\n  - kind: truncate\n    params: {at: -3}\n")
    with pytest.raises(FaultConfigError) as info:
        load_schedule(bad)
    assert str(bad) in str(info.value) and "fault #0" in str(info.value)

    with pytest.raises(FaultConfigError, match="not valid YAML"):
        (tmp_path / "broken.yaml").write_text("- kind: [drop\n")
        load_schedule(tmp_path / "broken.yaml")


def test_load_schedule_json(tmp_path) -> None:
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"faults": [{"kind": "http_error", "params": {"route": "/api/history", "body": "html"}}]}))
    spec = load_schedule(path).faults[0]
    assert spec.parsed_params.route == "/api/history" and spec.parsed_params.body == "html"


def test_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(FaultConfigError, match="cannot read"):
        load_schedule(tmp_path / "nope.yaml")


def test_count_defaults() -> None:
    assert FaultSpec(kind="drop").effective_count == 1
    assert FaultSpec(kind="drop", duration=2).effective_count is None
    assert FaultSpec(kind="drop", duration=2, count=3).effective_count == 3


def test_spec_round_trips_through_dump() -> None:
    spec = FaultSpec(kind="toxic", when={"on": "node_start", "task": "t1", "node_index": 1},
                     toxic={"type": "timeout", "attributes": {"timeout": 0}}, duration=2)
    again = FaultSpec.model_validate(spec.model_dump())
    assert again == spec
