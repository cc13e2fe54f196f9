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


def frontend_result(scenario: str, version: str, verdict: str, reasons: list[str], shot: str | None) -> dict[str, Any]:
    return {
        **result(scenario, f"frontend@{version}", verdict, faults=1),
        "comfyui_version": "0.33",
        "reasons": ["Falsifying run: …", *reasons, "seed: 1"],
        "evidence": [{"kind": "screenshot", "label": "at judgement", "t": 1.0, "src": shot}] if shot else [],
    }


def jpeg(size: tuple[int, int]) -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 40, 40)).save(buffer, "JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def test_frontend_section_is_written_into_the_page_and_kept_by_the_clients_table(tmp_path: Path) -> None:
    page = load_page_module()
    stuck = [
        "t2 (prompt a…) stuck ui: completed success on the server at +24.3 s, stuck UI: the page still showed it "
        "running at the judgement, 58.1 s after the server finished it (shown running since +1.4 s, stuck from +24.3 s)",
        "t3 (prompt b…) stuck ui: completed success on the server at +32.3 s, stuck UI: the page still showed it "
        "running at the judgement, 50.1 s after the server finished it (shown running since +2.0 s, stuck from +32.3 s)",
    ]
    frontend = [
        frontend_result("silent-window-ui", "1.58.1", "fail", stuck, jpeg((1280, 800))),
        frontend_result("silent-window-ui", "1.48.7", "fail", stuck, jpeg((1280, 800))),
        frontend_result("clean", "1.48.7", "pass", [], jpeg((1280, 800))),
    ]
    (tmp_path / "frontend.json").write_text(json.dumps({"results": frontend}), encoding="utf-8")
    out = tmp_path / "ecosystem.md"
    out.write_text("# The ComfyUI client ecosystem under chaos\n\nthe clients' table\n", encoding="utf-8")
    (tmp_path / "img" / "frontend").mkdir(parents=True)
    (tmp_path / "img" / "frontend" / "1.0.0-gone.jpg").write_bytes(b"stale")

    for _ in range(2):  # the second run replaces the section, it does not add another
        assert page.main(["--frontend-from", str(tmp_path / "frontend.json"), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.count(page.FRONTEND_BEGIN) == 1 and text.count(page.FRONTEND_END) == 1
    assert text.startswith("# The ComfyUI client ecosystem under chaos\n\nthe clients' table\n")
    assert "`python benchmarks/ecosystem.py --frontend 1.48.7,1.58.1`" in text
    header = next(line for line in text.splitlines() if line.startswith("| scenario |"))
    assert header.index("`1.48.7` (ComfyUI 0.33 profile)") < header.index("`1.58.1`")  # versions in order
    row = next(line for line in text.splitlines() if line.startswith("| `silent-window-ui` |"))
    assert row.count("FAIL: stuck UI t2 (58 s), t3 (50 s) ([screenshot](img/frontend/") == 2, row
    assert "| `clean` | pass | – |" in text
    shots = sorted(p.name for p in (tmp_path / "img" / "frontend").iterdir())
    assert shots == ["1.48.7-silent-window-ui.jpg", "1.58.1-silent-window-ui.jpg"]  # a passing run has none; stale removed
    from PIL import Image

    assert Image.open(tmp_path / "img" / "frontend" / shots[0]).size == page.SHOT_SIZE

    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps({"results": [result("clean", "lib-a", "pass")]}), encoding="utf-8")
    assert page.main(["--from", str(clients), "--out", str(out)]) == 0
    regenerated = out.read_text(encoding="utf-8")
    assert "the clients' table" not in regenerated and "## Scenario × client matrix" in regenerated
    assert page.frontend_section(regenerated) == page.frontend_section(text)  # kept as it was


def test_frontend_versions_run_against_the_profile_that_pins_them() -> None:
    page = load_page_module()
    assert page.frontend_profile("1.27.10") == "0.3.64"
    assert page.frontend_profile("1.48.7") == "0.33"
    assert page.frontend_profile("1.58.1") is None  # no profile pins it: the default one
    assert all((ROOT / "scenarios" / f"{name}.yaml").is_file() for name in page.FRONTEND_SAMPLE)
