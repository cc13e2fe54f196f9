"""A client that floods `submitted`, `result` and `stats` lines costs bounded memory and a
bounded run record; the record says that it flooded."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from comfy_chaos.harness.runner import Harness
from comfy_chaos.harness.scenario import parse_scenario

pytestmark = pytest.mark.e2e  # a whole scenario run with a flooding client

FLOODER = Path(__file__).with_name("flooder.py")
SCENARIO = """
name: flooded
seed: 5
time_scale: 1.0
workload: {tasks: 3, workflow: basic}
deadline: 60
grace: 2
"""
LINES_PER_TYPE = 10_000


async def test_a_flooding_client_is_capped_per_message_type_and_the_record_says_so() -> None:
    scenario = parse_scenario(SCENARIO, source="<flood>")
    async with Harness(done_margin=1.0) as harness:
        record = await harness.run(scenario, f"cmd:{sys.executable} {FLOODER} {LINES_PER_TYPE}")
    kinds: dict[str, int] = {}
    for report in record.reports:
        kinds[report.type] = kinds.get(report.type, 0) + 1
    assert kinds.get("result", 0) <= 4 * 3 + 64 and kinds.get("submitted", 0) <= 4 * 3 + 64, kinds
    notes = [r.detail or "" for r in record.reports if r.type == "note"]
    assert any("more than 76 'result' messages" in n for n in notes), notes
    assert any("more than 76 'submitted' messages" in n for n in notes), notes
    assert any("more than 1000 'stats' messages" in n for n in notes), notes
    assert any("outputs were" in n for n in notes), notes
    assert len(record.client_stats.get("per_client", {}).get("0", {})) <= 64
    size = len(json.dumps(record.to_json()["reports"], default=str))
    assert size < 2_000_000, f"the record's reports take {size} bytes"
