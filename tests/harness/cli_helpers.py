"""What the CLI tests share: the CLI as a child process and the small scenarios they run."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OK = """
seed: 3
workload: {tasks: 2, workflow: basic}
deadline: 60
grace: 5
"""
# t1's completion (`execution_success` and the final `executing`) never reaches the client.
# Time scale 0.3, not the default 0.1: a client that loses t1 must FAIL here even on a loaded
# CI machine, where at 0.1 the harness rightly calls a failing run with a lagging loop
# inconclusive (its lag budget is 1 scenario second: 300 ms here). The deadline keeps the
# run as short in real seconds (6 s).
DROP_T1 = """
seed: 11
workload: {tasks: 3, workflow: basic}
faults:
  - kind: drop
    when: {on: message, type: [execution_success, "executing:null"], task: t1}
    count: 2
deadline: 20
grace: 10
time_scale: 0.3
"""
# The fault waits for a task that does not exist: it never fires, nothing was tested.
NEVER_FIRES = OK + """
faults:
  - kind: drop
    when: {on: message, type: execution_success, task: t9}
"""


def cli(cwd: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """`comfy-chaos ARGS` run in `cwd` as a child process (the interpreter running the tests)."""
    return subprocess.run([sys.executable, "-m", "comfy_chaos.harness.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env, check=False)
