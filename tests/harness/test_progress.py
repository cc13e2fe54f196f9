"""Progress of a batch: counts and ETA on every line when not a terminal; a status line
redrawn at the bottom on a terminal."""
from __future__ import annotations

import io

from comfy_chaos.harness.cli.progress import Progress, describe_backend
from comfy_chaos.harness.results import ScenarioResult, TaskScore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def result(name: str, verdict: str) -> ScenarioResult:
    tasks = [TaskScore(task_id="t1", cls="lost", problems=["lost"])] if verdict == "fail" else []
    return ScenarioResult(scenario=name, client="naive", seed=1, time_scale=0.1, verdict=verdict, reasons=["why"],
                          replay=f"comfy-chaos replay {name}.yaml --client naive --seed 1",
                          metrics={"reported": 1, "server_completed": 2}, tasks=tasks)


def test_plain_lines_carry_count_and_eta() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(total=4, stream=out, live=False, clock=clock)
    clock.now += 10
    progress.finished(result("a", "pass"), 1.0)
    clock.now += 10
    progress.finished(result("b", "fail"), 2.0)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("PASS         a [naive] seed 1  1/2 reported  1.0 s")
    assert lines[0].endswith("[1/4] 1 pass, 0 fail, 0 inconclusive  elapsed 10s  ETA 30s")
    assert "(lost t1)" in lines[1] and lines[1].endswith("[2/4] 1 pass, 1 fail, 0 inconclusive  elapsed 20s  ETA 20s")
    assert lines[2] == "             replay: comfy-chaos replay b.yaml --client naive --seed 1"
    assert "\r" not in out.getvalue()


def test_terminal_keeps_a_status_line_below_the_results() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(total=2, stream=out, live=True, clock=clock)
    try:
        clock.now += 75
        progress.finished(result("a", "inconclusive"), 1.0)
        text = out.getvalue()
        assert "INCONCLUSIVE a [naive]" in text
        # the last thing drawn (by the result or by the ticker since) is the status line
        assert text.rsplit("\r\x1b[K", 1)[-1].endswith("[1/2] 0 pass, 0 fail, 1 inconclusive  elapsed 1m15s  ETA 1m15s")
    finally:
        progress.close()
    assert out.getvalue().endswith("\r\x1b[K")  # the status line is cleared at the end


def test_backend_line() -> None:
    info = {"kind": "bundled", "version": "2.12.0", "mode": "inprocess", "url": "http://127.0.0.1:1"}
    assert describe_backend(info) == "bundled 2.12.0 (inprocess) at http://127.0.0.1:1"
    assert describe_backend({"kind": "env", "url": "http://h:8474", "version": ""}) == "env at http://h:8474"
