"""docs/ecosystem.md: the reliability table of the ComfyUI client ecosystem, in one command.

    python benchmarks/ecosystem.py                      # run the bench, then write docs/ecosystem.md
    python benchmarks/ecosystem.py --all                # the whole default suite instead of the sample
    python benchmarks/ecosystem.py --from reports/ecosystem/results.json   # only re-render
    python benchmarks/ecosystem.py --frontend 1.27.10,1.48.7,1.58.1        # only the frontend section
    python benchmarks/ecosystem.py --frontend-from reports/ecosystem-frontend/*/results.json

Runs `comfy-chaos bench` over the real, published clients registered in
adapters/registry.toml (plus `reference` as the yardstick) with one seed per scenario, then
renders its results.json as Markdown: the clients, a summary per client (clean-run bugs
apart from fault bugs, latency, overhead), the scenario × client matrix, and every failed
cell with the harness's reason and what inspecting it found. The inspection notes and the
per-library bug descriptions live in benchmarks/ecosystem_notes.toml; a failed cell without
a note is printed as "not inspected", a note whose cell no longer fails is dropped.

`--frontend VERSIONS` runs ComfyUI's own web frontend instead (browser clients
`frontend@VERSION`, each against the protocol profile that pins it, else the default one)
over FRONTEND_SAMPLE and writes only the section "ComfyUI's own web frontend" of the page,
between its two marker comments, with the judgement screenshot of every failed cell shrunk
into docs/img/frontend/; regenerating the clients' table keeps that section as it is.

Reads results.json as plain JSON and only the fields it needs, so it keeps working while the
schema grows. A run is "fault-free" when its scenario schedules no fault; when results carry
a control-run attribution (`attribution`), that is shown as well.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTES = Path(__file__).with_name("ecosystem_notes.toml")
DEFAULT_OUT = ROOT / "docs" / "ecosystem.md"
DEFAULT_REPORT_DIR = ROOT / "reports" / "ecosystem"
CLIENTS = (
    "reference",
    "comfy-api-simplified",
    "comfyui-utils",
    "comfy-ui-client",
    "saintno-comfyui-sdk",
    "stable-canvas-comfyui-client",
    "comfykit",
)
# One to four scenarios per family (load and chaos left out, one restart: its deadline is
# 700 s at time scale 1.0): enough to separate the clients, small enough for the
# unscalable ones, which run at time scale 1.0.
SAMPLE = (
    "baseline/clean",
    "baseline/interval-submit",
    "baseline/mixed-workflows",
    "frame/bom",
    "frame/junk-prefix",
    "frame/truncated",
    "frame/unknown-binary-types",
    "message/drop-completion",
    "message/duplicate-completion",
    "message/drop-executing-null",
    "connection/abort-mid-run",
    "connection/flapping",
    "connection/silent-window",
    "connection/refuse-reconnect",
    "network/reset-mid-node",
    "network/proxy-down-beyond-backoff",
    "http/history-5xx-storm",
    "http/prompt-response-lost",
    "server/restart-keeps-history",
)
FRONTEND_SAMPLE = (
    "baseline/clean",
    "message/drop-completion",
    "connection/silent-window",
    "connection/silent-window-ui",
    "connection/abort-mid-run",
    "frame/bom-final",
    "frame/truncated-final",
)
FRONTEND_REPORT_DIR = ROOT / "reports" / "ecosystem-frontend"
FRONTEND_IMG = ROOT / "docs" / "img" / "frontend"
FRONTEND_BEGIN = "<!-- frontend section: written by benchmarks/ecosystem.py --frontend; edits here are overwritten -->"
FRONTEND_END = "<!-- end of the frontend section -->"
SHOT_SIZE = (640, 400)  # half the page's viewport: the badge and the tabs stay legible
SHOT_QUALITY = 55
STUCK_REASON = re.compile(r"^(t\d+) .*stuck UI: the page still showed it running at the judgement, ([\d.]+) s after")
# The scorer's problem counters, most telling first (the cell shows the first two present).
PROBLEMS = (
    ("crash", "crash"),
    ("lost", "lost"),
    ("stuck_ui", "stuck UI"),
    ("wrong_outcome", "wrong outcome"),
    ("wrong_outputs", "wrong outputs"),
    ("phantom", "phantom"),
    ("contradictory", "contradictory"),
    ("duplicate_report", "duplicate"),
    ("duplicate_execution", "dup execution"),
    ("indeterminate", "indeterminate"),
    ("hang", "hang"),
)


def comfy_chaos() -> str:
    beside = Path(sys.executable).with_name("comfy-chaos")
    found = str(beside) if beside.exists() else shutil.which("comfy-chaos")
    if found is None:
        sys.exit("benchmarks/ecosystem.py: the comfy-chaos command is not installed (pip install -e '.[thirdparty]')")
    return found


def run_bench(clients: list[str], all_scenarios: bool, seeds: int, jobs: int, report_dir: Path) -> Path:
    paths = [] if all_scenarios else [str(ROOT / "scenarios" / f"{name}.yaml") for name in SAMPLE]
    return bench([*paths, *(f"--client={c}" for c in clients), f"--seeds={seeds}", f"-j{jobs}"], report_dir)


def bench(args: list[str], report_dir: Path) -> Path:
    argv = [comfy_chaos(), "bench", *args, f"--report-dir={report_dir}"]
    print("+", " ".join(argv), flush=True)
    status = subprocess.run(argv, cwd=ROOT, check=False).returncode
    results = report_dir / "results.json"
    if status not in (0, 1, 2) or not results.is_file():
        sys.exit(f"benchmarks/ecosystem.py: comfy-chaos bench exited {status} without {results}")
    return results


def frontend_profile(version: str) -> str | None:
    """The protocol profile whose ComfyUI pins this frontend version (None: the default profile)."""
    from comfy_chaos.fake_comfy.profiles import PROFILES

    return next((name for name, profile in PROFILES.items() if profile.frontend_version == version), None)


def run_frontend_bench(versions: list[str], jobs: int, report_dir: Path) -> list[Path]:
    """FRONTEND_SAMPLE × frontend@VERSION, one bench per protocol profile, without control runs
    (the clean scenario is the frontend's clean run; a browser run costs ~1 GiB and 10-25 CPU-s)."""
    paths = [str(ROOT / "scenarios" / f"{name}.yaml") for name in FRONTEND_SAMPLE]
    by_profile: dict[str | None, list[str]] = {}
    for version in versions:
        by_profile.setdefault(frontend_profile(version), []).append(version)
    found = []
    for profile, pinned in by_profile.items():
        args = [*paths, *(f"--client=frontend@{v}" for v in pinned), "--no-control", f"-j{jobs}"]
        args += [f"--comfyui-version={profile}"] if profile else []
        found.append(bench(args, report_dir / (profile or "default")))
    return found


# --- reading results.json ----------------------------------------------------------------


def metric(result: dict[str, Any], name: str) -> float:
    value = (result.get("metrics") or {}).get(name)
    return float(value) if isinstance(value, (int, float)) else 0.0


def fault_free(result: dict[str, Any]) -> bool:
    return not result.get("faults") and metric(result, "faults_scheduled") == 0


def problems(result: dict[str, Any]) -> list[str]:
    found = []
    for key, label in PROBLEMS:
        value = (result.get("metrics") or {}).get(key)
        if value is True:
            found.append(label)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            found.append(f"{label} {int(value)}")
    return found


def judgement(result: dict[str, Any]) -> str:
    """The scorer's problem counts, else (a slow-burn bar: latency, requests, CPU) its first judgement."""
    found = problems(result)
    if found:
        return ", ".join(found[:2])
    reasons = [r for r in result.get("reasons") or [] if not r.startswith(("Falsifying run", "seed:", "replay:"))]
    return reasons[0].split(" (")[0].replace("|", "\\|")[:80] if reasons else "fail"


def first_reason(result: dict[str, Any]) -> str:
    """The harness's most specific reason line: a task's story, else the first judgement."""
    reasons = [r for r in result.get("reasons") or [] if not r.startswith(("Falsifying run", "seed:", "replay:"))]
    specific = [r for r in reasons if re.match(r"t\d+ ", r)]
    chosen = (specific or reasons or ["(no reason given)"])[0]
    return chosen.replace("|", "\\|").replace("\n", " ")[:220]


def cell_cause(result: dict[str, Any]) -> str:
    """Where a failure comes from: a fault-free scenario, or the control-run attribution
    (results.json schema 2: `attribution`, `clean_run_bug`) of a faulted one."""
    if fault_free(result):
        return "clean run"
    attribution = result.get("attribution")
    if attribution == "clean_run":
        return "faults; fails without them too"
    if attribution == "fault":
        return "faults (caused by them)" + ("; also a clean-run bug" if result.get("clean_run_bug") else "")
    if attribution == "unattributed":
        return "faults (no control run)"
    return "faults"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


# --- rendering -----------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("\n", " ") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render(results: list[dict[str, Any]], notes: dict[str, Any], command: str, source: Path) -> str:
    clients = list(dict.fromkeys(r["client"] for r in results))
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    by_cell: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        by_cell.setdefault((r["scenario"], r["client"]), []).append(r)
    info = notes.get("clients", {})
    cell_notes = notes.get("cells", {})
    seeds_per = {r.get("seed") for r in results if r["scenario"] == scenarios[0] and r["client"] == clients[0]}

    out = ["# The ComfyUI client ecosystem under chaos\n"]
    out.append(
        f"Regenerate this page with **`{command}`** (about 35 minutes on 2 cores (33 min measured for 133 runs), most of it "
        "the unscalable clients' runs at time scale 1.0; it installs nothing: install the clients first, "
        "see `docs/adapters-thirdparty.md`). It runs `comfy-chaos bench` into `reports/ecosystem/` and "
        "renders its `results.json`; `--from reports/ecosystem/results.json` only re-renders, `--all` "
        "runs the whole default suite instead of the sample. The inspection notes and bug descriptions "
        "come from `benchmarks/ecosystem_notes.toml`.\n"
    )
    out.append(
        f"This run: {len(scenarios)} scenarios × {len(clients)} clients, {len(seeds_per)} seed(s) per "
        f"scenario (its own seed first), rendered {datetime.now(UTC):%Y-%m-%d}. Clients that "
        "cannot be time-scaled (fixed poll intervals, timeouts, reconnect delays) ran at time scale 1.0, "
        "the others at the scenario's. A cell reads pass / FAIL (the scorer's problem counts) / inconcl. "
        "(the faults never reached the client). `reference` is this project's client, the yardstick.\n"
    )

    out.append("## The clients\n")
    if notes.get("selection"):
        out.append(notes["selection"].strip() + "\n")
    rows = []
    for client in clients:
        c = info.get(client, {})
        scales = sorted({r.get("time_scale") for r in results if r["client"] == client}, key=str)
        rows.append([f"`{client}`", c.get("package", "–"), c.get("popularity", "–"), c.get("api", "–"),
                     ", ".join(map(str, scales))])
    out.append(table(["client", "package", "popularity", "what the adapter calls", "time scale"], rows))

    out.append("\n## Reliability summary\n")
    out.append(
        "Fault-free scenarios are `baseline/*` (no fault scheduled): a failure there is a **clean-run "
        "bug**, the client fails without any chaos. Fault cells are the rest; where results.json carries "
        "the control-run attribution (schema 2), a failed fault cell says whether the faults caused it "
        "or the client fails the same workload without them. Latency is report time − "
        "server completion (scenario seconds, over all tasks of all runs); overhead is HTTP requests and "
        "reconnects per task and the adapter's CPU seconds per task.\n"
    )
    rows = []
    for client in clients:
        mine = [r for r in results if r["client"] == client]
        clean = [r for r in mine if fault_free(r)]
        faulty = [r for r in mine if not fault_free(r)]
        tasks = sum(metric(r, "tasks") for r in mine) or 1.0
        latencies = [t["latency"] for r in mine for t in r.get("tasks") or [] if isinstance(t.get("latency"), (int, float))]
        verdicts = Counter(r.get("verdict") for r in faulty)
        causes = Counter(r.get("attribution") for r in faulty if r.get("verdict") == "fail")
        split = (f"; {causes['fault'] + causes['unattributed']} by the faults, {causes['clean_run']} fail without them"
                 if causes["fault"] + causes["clean_run"] else "")
        rows.append([
            f"`{client}`",
            f"{sum(r.get('verdict') == 'pass' for r in clean)}/{len(clean)}",
            f"{verdicts['pass']}/{len(faulty)} ({verdicts['fail']} fail{split}, {verdicts['inconclusive']} inconcl.)",
            str(int(sum(metric(r, "lost") for r in mine))),
            str(int(sum(metric(r, "wrong_outcome") + metric(r, "wrong_outputs") + metric(r, "contradictory") for r in mine))),
            str(int(sum(metric(r, "indeterminate") for r in mine))),
            str(sum(bool(metric(r, "hang")) for r in mine)),
            str(sum(bool(metric(r, "crash")) for r in mine)),
            f"{num(percentile(latencies, 50))} / {num(percentile(latencies, 95))} / {num(max(latencies) if latencies else None)}",
            num(sum(metric(r, "http_requests") for r in mine) / tasks, 1),
            num(sum(metric(r, "reconnects") for r in mine) / tasks, 2),
            num(sum(metric(r, "cpu_s") for r in mine) / tasks, 3),
        ])
    out.append(table(["client", "clean runs passed", "fault scenarios passed", "lost", "wrong", "indet.",
                      "hangs", "crashes", "latency p50 / p95 / max s", "http/task", "reconn/task", "cpu s/task"], rows))

    out.append("\n## Scenario × client matrix\n")
    rows = []
    for scenario in scenarios:
        row = [f"`{scenario}`" + (" (no faults)" if all(fault_free(r) for c in clients for r in by_cell.get((scenario, c), [])) else "")]
        for client in clients:
            runs = by_cell.get((scenario, client), [])
            if not runs:
                row.append("–")
                continue
            worst = next((r for r in runs if r.get("verdict") == "fail"), runs[0])
            verdict = worst.get("verdict")
            row.append("pass" if verdict == "pass" else "inconcl." if verdict != "fail" else "FAIL: " + judgement(worst))
        rows.append(row)
    out.append(table(["scenario", *(f"`{c}`" for c in clients)], rows))

    out.append("\n## Every failed cell, inspected\n")
    out.append(
        "Each FAIL above, with the harness's own reason and what inspecting it showed: the scorer's "
        "task stories and the run's log; where the adapter's own words were needed, a replay "
        "(`comfy-chaos replay … --time-scale 1.0`) with the adapter's stdout and stderr captured; and "
        "the library's source (the npm packages ship their TypeScript in source maps) to name the "
        "function. **client** = a real defect of the library (the ids point to the list below); "
        "**harness** = a false failure of comfy-chaos.\n"
    )
    harness_cells = []
    for client in clients:
        failed = [(s, r) for s in scenarios for r in by_cell.get((s, client), []) if r.get("verdict") == "fail"]
        if not failed:
            continue
        out.append(f"\n### `{client}`\n")
        rows = []
        for scenario, r in failed:
            note = cell_notes.get(client, {}).get(scenario)
            if note is None:
                verdict, text = "not inspected", ""
            else:
                verdict, text = note.get("verdict", "?"), note.get("note", "")
            if verdict == "harness":
                harness_cells.append((scenario, client, first_reason(r), text))
            where = cell_cause(r)
            rows.append([f"`{scenario}`", where, judgement(r), first_reason(r), f"**{verdict}**: {text}".rstrip(": ")])
        out.append(table(["scenario", "where", "scorer", "harness says", "inspection"], rows))

    out.append("\n## The bugs, for the libraries' maintainers\n")
    out.append("Each found by a failed cell above and confirmed in the library's source; the cells cite them by id.\n")
    for client in clients:
        bugs = notes.get("bugs", {}).get(client, {})
        if not bugs:
            continue
        out.append(f"\n### `{client}` — {info.get(client, {}).get('package', '')}\n")
        out.extend(f"- **{bug_id}** {text.strip()}\n" for bug_id, text in bugs.items())

    out.append("\n## Harness false failures found here\n")
    if notes.get("harness_context"):
        out.append(notes["harness_context"].strip() + "\n")
    listed = notes.get("harness_false_failures", [])
    if not harness_cells and not listed:
        out.append("None in this run.\n")
    for scenario, client, said, why in harness_cells:
        out.append(f"- `{scenario}` × `{client}`: the harness said \"{said}\"; {why}\n")
    out.extend(f"- {item.strip()}\n" for item in listed)
    return "\n\n".join(part.strip("\n") for part in out) + "\n"


def frontend_version(client: str) -> str:
    return client.partition("@")[2] or client


def stuck_text(result: dict[str, Any]) -> str:
    """`stuck UI t2 (58 s), t3 (50 s)`: the tasks the page still showed running at the
    judgement, and for how long after the server had finished them."""
    found = [m for m in (STUCK_REASON.match(r) for r in result.get("reasons") or []) if m]
    return "stuck UI " + ", ".join(f"{m[1]} ({float(m[2]):.0f} s)" for m in found) if found else ""


def shot_name(result: dict[str, Any]) -> str:
    return f"{frontend_version(result['client'])}-{result['scenario']}.jpg"


def save_shots(results: list[dict[str, Any]], folder: Path) -> dict[tuple[str, str], str]:
    """The judgement screenshot of every failed run, shrunk to SHOT_SIZE (~12 KB each), into
    `folder`; other .jpg files there are removed. Returns (scenario, client) → file name."""
    import base64
    import io

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    saved: dict[tuple[str, str], str] = {}
    for result in results:
        shot = next((e for e in result.get("evidence") or [] if e.get("label") == "at judgement"), None)
        if result.get("verdict") != "fail" or shot is None or "," not in str(shot.get("src")):
            continue
        image = Image.open(io.BytesIO(base64.b64decode(shot["src"].split(",", 1)[1]))).convert("RGB")
        image.thumbnail(SHOT_SIZE, Image.Resampling.LANCZOS)
        name = shot_name(result)
        image.save(folder / name, "JPEG", quality=SHOT_QUALITY, optimize=True)
        saved[(result["scenario"], result["client"])] = name
    for stale in folder.glob("*.jpg"):
        if stale.name not in saved.values():
            stale.unlink()
    return saved


def render_frontend(results: list[dict[str, Any]], notes: dict[str, Any], command: str,
                    shots: dict[tuple[str, str], str], img_prefix: str) -> str:
    """The section "ComfyUI's own web frontend", between FRONTEND_BEGIN and FRONTEND_END."""
    clients = sorted(dict.fromkeys(r["client"] for r in results),
                     key=lambda c: tuple(int(x) for x in frontend_version(c).split(".") if x.isdigit()))
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    by_cell = {(r["scenario"], r["client"]): r for r in results}
    profile = {c: next((r.get("comfyui_version") for r in results if r["client"] == c), None) for c in clients}
    texts = notes.get("frontend", {})
    out = [FRONTEND_BEGIN, "## ComfyUI's own web frontend\n"]
    out.append(
        f"Written by **`{command}`** (rendered {datetime.now(UTC):%Y-%m-%d}; "
        "`--frontend-from reports/ecosystem-frontend/*/results.json` only re-renders). ComfyUI's own web "
        "frontend (PyPI `comfyui-frontend-package`) in headless Chromium (docs/browser.md), one run per "
        "cell at time scale 1.0, each version against the protocol profile of the ComfyUI that pins it "
        "(else the default), without control runs (`baseline/clean` is its clean run). **stuck UI** = "
        "the page still showed the task running at the judgement, after the server had finished it and "
        "the fault had been lifted for the scenario's grace; the time is how long after the server "
        "finished it. The screenshot is the page at the judgement.\n"
    )
    header = ["scenario", *(f"`{frontend_version(c)}` (ComfyUI {profile[c]} profile)" for c in clients)]
    rows = []
    for scenario in scenarios:
        row = [f"`{scenario}`"]
        for client in clients:
            r = by_cell.get((scenario, client))
            if r is None:
                row.append("–")
                continue
            verdict = r.get("verdict")
            if verdict != "fail":
                row.append("pass" if verdict == "pass" else "inconcl.")
                continue
            cell = "FAIL: " + (stuck_text(r) or judgement(r))
            if (scenario, client) in shots:
                cell += f" ([screenshot]({img_prefix}{shots[(scenario, client)]}))"
            row.append(cell)
        rows.append(row)
    out.append(table(header, rows))
    described = [(s, texts[s]) for s in scenarios if isinstance(texts.get(s), str)]
    if described:
        out.append("\n".join(f"- `{s}`: {text.strip()}" for s, text in described) + "\n")
    out.append(FRONTEND_END)
    return "\n\n".join(part.strip("\n") for part in out) + "\n"


def frontend_section(page: str) -> str | None:
    """The frontend section of an existing page, markers included (None: it has none)."""
    begin, end = page.find(FRONTEND_BEGIN), page.find(FRONTEND_END)
    if begin < 0 or end < begin:
        return None
    return page[begin:end + len(FRONTEND_END)] + "\n"


def with_frontend_section(page: str, section: str) -> str:
    """`page` with its frontend section replaced by `section` (appended if it has none)."""
    old = frontend_section(page)
    if old is None:
        return page.rstrip("\n") + "\n\n" + section
    return page.replace(old.rstrip("\n"), section.rstrip("\n"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/ecosystem.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, help="render this results.json instead of running the bench")
    parser.add_argument("--all", action="store_true", help="the whole default suite instead of the sample")
    parser.add_argument("--client", action="append", dest="clients", help=f"(repeatable) default: {', '.join(CLIENTS)}")
    parser.add_argument("--frontend", metavar="VERSIONS",
                        help="only the frontend section: run FRONTEND_SAMPLE × these comfyui-frontend-package "
                             "versions (comma-separated, e.g. 1.27.10,1.48.7,1.58.1)")
    parser.add_argument("--frontend-from", nargs="+", type=Path, metavar="RESULTS",
                        help="only the frontend section, rendered from these results.json")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--report-dir", type=Path, default=None,
                        help=f"default {os.path.relpath(DEFAULT_REPORT_DIR, ROOT)} "
                             f"(--frontend: {os.path.relpath(FRONTEND_REPORT_DIR, ROOT)})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.frontend or args.frontend_from:
        return main_frontend(args)
    source = args.source or run_bench(list(args.clients or CLIENTS), args.all, args.seeds, args.jobs,
                                      args.report_dir or DEFAULT_REPORT_DIR)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        notes = tomllib.loads(NOTES.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"benchmarks/ecosystem.py: {exc}", file=sys.stderr)
        return 3
    results = data.get("results") if isinstance(data, dict) else None
    if not results:
        print(f"benchmarks/ecosystem.py: {source}: no results", file=sys.stderr)
        return 3
    command = "python benchmarks/ecosystem.py" + (" --all" if args.all else "")
    page = render(results, notes, command, source.resolve())
    kept = frontend_section(args.out.read_text(encoding="utf-8")) if args.out.is_file() else None
    args.out.write_text(with_frontend_section(page, kept) if kept else page, encoding="utf-8")
    print(f"benchmarks/ecosystem.py: wrote {os.path.relpath(args.out)} from {source}")
    return 0


def main_frontend(args: argparse.Namespace) -> int:
    if args.frontend:
        versions = [v.strip() for v in args.frontend.split(",") if v.strip()]
        bad = [v for v in versions if not re.fullmatch(r"\d+\.\d+\.\d+", v)]
        if bad or not versions:
            print(f"benchmarks/ecosystem.py: --frontend: expected versions like 1.48.7,1.58.1, got {args.frontend!r}",
                  file=sys.stderr)
            return 3
        sources = run_frontend_bench(versions, args.jobs, args.report_dir or FRONTEND_REPORT_DIR)
        command = f"python benchmarks/ecosystem.py --frontend {','.join(versions)}"
    else:
        sources = list(args.frontend_from)
        command = "python benchmarks/ecosystem.py --frontend " + "VERSIONS"
    results: list[dict[str, Any]] = []
    try:
        for source in sources:
            data = json.loads(source.read_text(encoding="utf-8"))
            results += [r for r in (data.get("results") or []) if str(r.get("client", "")).startswith("frontend")]
        notes = tomllib.loads(NOTES.read_text(encoding="utf-8"))
    except (OSError, ValueError, AttributeError) as exc:
        print(f"benchmarks/ecosystem.py: {exc}", file=sys.stderr)
        return 3
    if not results:
        print(f"benchmarks/ecosystem.py: {', '.join(map(str, sources))}: no frontend results", file=sys.stderr)
        return 3
    if not args.frontend:
        versions = sorted({frontend_version(r["client"]) for r in results},
                          key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()))
        command = f"python benchmarks/ecosystem.py --frontend {','.join(versions)}"
    folder = args.out.parent / "img" / "frontend"
    shots = save_shots(results, folder)
    section = render_frontend(results, notes, command, shots, os.path.relpath(folder, args.out.parent) + "/")
    page = args.out.read_text(encoding="utf-8") if args.out.is_file() else "# The ComfyUI client ecosystem under chaos\n"
    args.out.write_text(with_frontend_section(page, section), encoding="utf-8")
    print(f"benchmarks/ecosystem.py: wrote the frontend section of {os.path.relpath(args.out)} "
          f"({len(results)} runs, {len(shots)} screenshots in {os.path.relpath(folder)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
