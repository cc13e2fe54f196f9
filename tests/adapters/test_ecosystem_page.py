"""benchmarks/ecosystem.py renders docs/ecosystem.md from a bench's results.json.

Fed a small results file written here (no bench run): the page must separate clean-run
failures from fault cells, print every failed cell with the scorer's problems and the
inspection note, mark a failed cell without a note as not inspected, and drop notes whose
cell passed.
"""
from __future__ import annotations

import importlib.util
import json
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_page_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ecosystem_page", ROOT / "benchmarks" / "ecosystem.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result(scenario: str, client: str, verdict: str, *, faults: int = 0, **metrics: Any) -> dict[str, Any]:
    base = {"tasks": 2, "lost": 0, "wrong_outcome": 0, "wrong_outputs": 0, "indeterminate": 0, "hang": False,
            "crash": False, "faults_scheduled": faults, "http_requests": 6, "reconnects": 0, "cpu_s": 0.2}
    return {
        "scenario": scenario, "client": client, "seed": 1, "time_scale": 1.0, "verdict": verdict,
        "faults": [{"kind": "drop"}] * faults, "metrics": {**base, **metrics},
        "reasons": ["Falsifying run: …", f"t1 (prompt abc…) {scenario} story for {client}", "seed: 1"],
        "tasks": [{"task_id": "t0", "latency": 0.5}, {"task_id": "t1", "latency": None}],
    }


NOTES = """
[clients.lib-a]
package = "npm `lib-a` 1.0"
[bugs.lib-a]
X1 = "the bug, precisely"
[cells.lib-a]
"clean" = { verdict = "client", note = "X1 on a clean run" }
"drop" = { verdict = "harness", note = "the fault never reached it" }
"passing" = { verdict = "client", note = "must not appear" }
"""


def test_page_separates_clean_runs_and_prints_every_failed_cell(tmp_path: Path) -> None:
    page = load_page_module()
    results = [
        result("clean", "lib-a", "fail", lost=1),
        result("drop", "lib-a", "fail", faults=1, wrong_outputs=2),
        {**result("reset", "lib-a", "fail", faults=1, crash=True), "attribution": "clean_run", "clean_run_bug": True},
        result("passing", "lib-a", "pass", faults=1),
        result("clean", "lib-b", "pass"),
    ]
    source = tmp_path / "results.json"
    source.write_text(json.dumps({"schema_version": 1, "results": results}), encoding="utf-8")
    text = page.render(results, tomllib.loads(NOTES), "python benchmarks/ecosystem.py", source)

    assert "`python benchmarks/ecosystem.py`" in text.splitlines()[2]
    summary = next(line for line in text.splitlines() if line.startswith("| `lib-a` |") and "/1" in line)
    assert "| 0/1 | 1/3 (2 fail; 0 by the faults, 1 fail without them, 0 inconcl.) |" in summary, summary
    assert "| `clean` | clean run | lost 1 | t1 (prompt abc…) clean story for lib-a | **client**: X1 on a clean run |" in text
    assert "| `drop` | faults | wrong outputs 2 |" in text and "**harness**: the fault never reached it" in text
    assert "| `reset` | faults; fails without them too | crash |" in text and "**not inspected**" in text
    assert "must not appear" not in text
    assert "- **X1** the bug, precisely" in text
    assert "`drop` × `lib-a`: the harness said" in text


def test_notes_file_parses_and_names_known_clients() -> None:
    page = load_page_module()
    notes = tomllib.loads(page.NOTES.read_text(encoding="utf-8"))
    assert set(page.CLIENTS) <= set(notes["clients"]), "every default client has a row in the notes"
    for client, cells in notes.get("cells", {}).items():
        for scenario, note in cells.items():
            assert note["verdict"] in ("client", "harness"), (client, scenario)
            assert note["note"].strip(), (client, scenario)
