"""What the runner tests share: the scripted adapters, two scenarios and a parser that names them."""
from __future__ import annotations

import re
from pathlib import Path

from comfy_chaos.harness.scenario import Scenario, parse_scenario

SCRIPTS = Path(__file__).parent / "adapter_scripts"

CLEAN = """
name: clean-test
seed: 3
workload: {tasks: 4, workflow: basic}
deadline: 60
grace: 5
"""

# t3's two completion frames are lost; the socket stays healthy.
DROP_T3 = """
name: drop-t3
seed: 1234
workload: {tasks: 6, workflow: basic}
faults:
  - kind: drop
    when: {on: message, type: [execution_success, "executing:null"], task: t3}
    count: 2
deadline: 60
grace: 15
"""


def scenario(text: str) -> Scenario:
    """The scenario in `text`, loaded as if from `<its name>.yaml`."""
    match = re.search(r"name: (\S+)", text)
    assert match, "a test scenario needs a name"
    return parse_scenario(text, source=f"{match.group(1)}.yaml")
