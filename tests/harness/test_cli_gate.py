"""The CLI as a CI gate: exit codes as the README lists them, per-file errors, the baseline
gate, JUnit XML, report directories per command, shards and merge. Child processes."""
from __future__ import annotations

import json
import os
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .cli_helpers import DROP_T1, NEVER_FIRES, OK, cli

pytestmark = pytest.mark.e2e  # each test runs the CLI in a child process





@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "s").mkdir()
    for name, text in {"ok": OK, "drop": DROP_T1}.items():
        (tmp_path / "s" / f"{name}.yaml").write_text(text)
    (tmp_path / "never.yaml").write_text(NEVER_FIRES)
    return tmp_path


def verdicts(path: Path) -> list[tuple[str, str, int, str]]:
    results = json.loads(path.read_text())["results"]
    return sorted((r["scenario"], r["client"], r["seed"], r["verdict"]) for r in results)


def too_slow(path: Path) -> set[tuple[str, str, int]]:
    """The runs the harness called inconclusive because the machine was too slow."""
    results = json.loads(path.read_text())["results"]
    return {(r["scenario"], r["client"], r["seed"]) for r in results
            if r["verdict"] == "inconclusive" and any("the machine was too slow" in x for x in r["reasons"])}


# --- exit codes and errors -------------------------------------------------------------------


def test_version_prints_and_exits_0(work: Path) -> None:
    run = cli(work, "--version")
    assert run.returncode == 0 and run.stdout.startswith("comfy-chaos ")


def test_one_broken_file_is_an_error_item_and_the_rest_runs(work: Path) -> None:
    (work / "s" / "broken.yaml").write_text(OK + "faults:\n  - {kind: drop, probability: 1.5}\n")
    run = cli(work, "run", "s", "--junitxml", "j.xml")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "ERROR        s/broken.yaml: invalid scenario" in run.stdout and "faults[0].probability" in run.stdout
    assert "PASS         ok [reference]" in run.stdout and "PASS         drop [reference]" in run.stdout
    assert "1 scenario file(s) could not be loaded: s/broken.yaml" in run.stdout
    suite = ET.parse(work / "j.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("errors")) == ("3", "1")


def test_a_misspelt_top_level_key_is_reported_on_its_own_line(work: Path) -> None:
    (work / "typo.yaml").write_text("seed: 3\nworkload: {tasks: 2, workflow: basic}\nexpectt:\n  lost: 0\n")
    run = cli(work, "run", "typo.yaml")
    assert run.returncode == 3
    assert "typo.yaml: expectt: unexpected field" in run.stderr and "(line 3)" in run.stderr


def test_unreachable_toxiproxy_url_is_a_config_error_in_one_line(work: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "TOXIPROXY_URL": f"http://127.0.0.1:{port}"}
    for args in (["run", "s/ok.yaml"], ["replay", "s/ok.yaml", "--seed", "1"]):
        run = cli(work, *args, env=env)
        assert run.returncode == 3, run.stdout + run.stderr
        assert run.stderr.strip().count("\n") == 0 and "TOXIPROXY_URL" in run.stderr
        assert "Traceback" not in run.stderr


def test_serve_usage_and_config_errors_exit_3(work: Path) -> None:
    bad_port = cli(work, "serve", "--port", "abc")
    assert bad_port.returncode == 3 and "invalid int value: 'abc'" in bad_port.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = cli(work, "serve", "--port", str(sock.getsockname()[1]))
    assert busy.returncode == 3 and "cannot listen on" in busy.stderr and "Traceback" not in busy.stderr
    (work / "toxic.yaml").write_text("- kind: toxic\n  when: {at: 1}\n  toxic: {type: timeout}\n")
    toxic = cli(work, "serve", "--port", "0", "--faults", "toxic.yaml")
    assert toxic.returncode == 3 and "kind='toxic'" in toxic.stderr and "serve does not run" in toxic.stderr


def test_time_scale_must_be_positive_everywhere(work: Path) -> None:
    for args in (["run", "s/ok.yaml"], ["replay", "s/ok.yaml", "--seed", "1"], ["bench", "s/ok.yaml"]):
        run = cli(work, *args, "--time-scale", "-1")
        assert run.returncode == 3 and "--time-scale: expected a number in [0.01, 10]" in run.stderr, args


# --- the baseline gate ------------------------------------------------------------------------


def test_gate_passes_a_client_exactly_as_good_as_its_baseline_and_fails_when_worse(work: Path) -> None:
    first = cli(work, "run", "s", "--client", "naive", "--write-baseline", "base.json")
    assert first.returncode == 1  # naive loses t1 of drop: a known failure from now on
    same = cli(work, "run", "s", "--client", "naive", "--baseline", "base.json")
    assert same.returncode == 0, same.stdout
    assert "no regression against base.json in 2 matched pair(s)" in same.stdout
    (work / "s" / "ok.yaml").write_text(DROP_T1.replace("seed: 11", "seed: 12"))  # ok now loses t1 too
    worse = cli(work, "run", "s", "--client", "naive", "--baseline", "base.json")
    assert worse.returncode == 1, worse.stdout
    assert "ok / naive: lost: newly lost: t1" in worse.stdout


def test_gate_with_no_matching_run_says_so_and_exits_3(work: Path) -> None:
    assert cli(work, "run", "s/ok.yaml", "--write-baseline", "base.json").returncode == 0
    other = cli(work, "run", "s/ok.yaml", "--client", "naive", "--baseline", "base.json")
    assert other.returncode == 3, other.stdout
    assert "no run matched the baseline base.json" in other.stdout and "no regression" not in other.stdout


def test_gate_can_fail_on_inconclusive(work: Path) -> None:
    assert cli(work, "run", "never.yaml", "--write-baseline", "base.json").returncode == 2
    assert cli(work, "run", "never.yaml", "--baseline", "base.json").returncode == 0
    gated = cli(work, "run", "never.yaml", "--baseline", "base.json", "--fail-on-inconclusive", "--junitxml", "j.xml")
    assert gated.returncode == 2 and "1 inconclusive: never / reference" in gated.stdout
    case = ET.parse(work / "j.xml").getroot().find("testsuite/testcase")
    assert case is not None and case.find("error") is not None and case.find("error").get("type") == "inconclusive"


def test_a_regressed_run_does_not_replace_the_baseline_without_force(work: Path) -> None:
    assert cli(work, "run", "s/drop.yaml", "--write-baseline", "base.json").returncode == 0
    before = (work / "base.json").read_text()
    bad = cli(work, "run", "s/drop.yaml", "--client", "naive", "--client", "reference",
              "--baseline", "base.json", "--write-baseline", "base.json")
    assert bad.returncode == 1 and "baseline NOT written" in bad.stdout, bad.stdout
    assert (work / "base.json").read_text() == before
    # without --baseline, the file it would replace is the one compared against
    kept = cli(work, "run", "s/drop.yaml", "--client", "reference", "--client", "naive", "--write-baseline", "base.json")
    assert kept.returncode == 1 and "baseline NOT written: this run regressed against base.json" in kept.stdout, kept.stdout
    assert (work / "base.json").read_text() == before
    forced = cli(work, "run", "s/drop.yaml", "--client", "naive", "--write-baseline", "base.json", "--force")
    assert forced.returncode == 1 and "baseline written to base.json" in forced.stdout
    assert cli(work, "run", "s/drop.yaml", "--client", "naive", "--baseline", "base.json").returncode == 0


def test_junitxml_has_a_testcase_per_run(work: Path) -> None:
    run = cli(work, "run", "s", "never.yaml", "--client", "naive", "--junitxml", "out/junit.xml")
    assert run.returncode == 1
    suite = ET.parse(work / "out" / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    failure = suite.find("testcase/failure")
    assert failure is not None and "replay: comfy-chaos replay" in (failure.text or "")


# --- report directories -----------------------------------------------------------------------


def test_each_command_has_its_own_report_directory_and_no_stale_logs(work: Path) -> None:
    assert cli(work, "run", "s/ok.yaml").returncode == 0
    report = (work / "comfy-chaos-report" / "results.json").read_text()
    (work / "comfy-chaos-replay" / "logs").mkdir(parents=True)
    (work / "comfy-chaos-replay" / "logs" / "stale--x--seed1.jsonl").write_text("{}\n")
    assert cli(work, "replay", "s/drop.yaml", "--seed", "5").returncode == 0
    assert (work / "comfy-chaos-report" / "results.json").read_text() == report
    logs = sorted(p.name for p in (work / "comfy-chaos-replay" / "logs").iterdir())
    assert "stale--x--seed1.jsonl" not in logs and "drop--reference--seed5.jsonl" in logs
    assert all(name.startswith("drop") for name in logs), logs  # the run's own logs (and its control run's) only
    assert verdicts(work / "comfy-chaos-replay" / "results.json") == [("drop", "reference", 5, "pass")]


def test_the_backend_is_recorded_in_results_html_and_logs(work: Path) -> None:
    assert cli(work, "run", "s/ok.yaml").returncode == 0
    run = json.loads((work / "comfy-chaos-report" / "results.json").read_text())["run"]
    assert run["toxiproxy"].startswith("bundled ") and run["toxiproxy_backend"]["kind"] == "bundled"
    assert f"toxiproxy: {run['toxiproxy']}" in (work / "comfy-chaos-report" / "index.html").read_text()
    log = (work / "comfy-chaos-report" / "logs" / "ok--reference--seed3.jsonl").read_text().splitlines()
    start = next(json.loads(line) for line in log if '"runner.start"' in line)
    assert start["toxiproxy"]["kind"] == "bundled"


# --- shards and merge -------------------------------------------------------------------------


def test_two_shards_merged_give_the_same_verdicts_as_one_run(work: Path) -> None:
    args = ["s", "never.yaml", "--client", "naive", "--client", "reference"]
    whole = cli(work, "run", *args, "--report-dir", "whole")
    parts = [cli(work, "run", *args, "--shard", f"{k}/2", "--report-dir", f"part{k}") for k in (1, 2)]
    assert all("shard" in p.stdout for p in parts)
    one, two = verdicts(work / "part1" / "results.json"), verdicts(work / "part2" / "results.json")
    assert one and two and not {v[:3] for v in one} & {v[:3] for v in two}
    merged = cli(work, "merge", "part1", "part2/results.json", "--report-dir", "merged")
    assert verdicts(work / "merged" / "results.json") == sorted(one + two)  # merge keeps every run as it was
    # The unsharded run is another run: on a loaded machine one of them may rightly be
    # "inconclusive: the machine was too slow" where the other failed; every other verdict agrees.
    whole_runs = verdicts(work / "whole" / "results.json")
    assert [v[:3] for v in whole_runs] == [v[:3] for v in sorted(one + two)]
    slow = too_slow(work / "whole" / "results.json") | too_slow(work / "part1" / "results.json") | too_slow(
        work / "part2" / "results.json")
    assert [v for v in whole_runs if v[:3] not in slow] == [v for v in sorted(one + two) if v[:3] not in slow]
    assert merged.returncode == (1 if any(v[3] == "fail" for v in one + two) else 2)
    assert whole.returncode == (1 if any(v[3] == "fail" for v in whole_runs) else 2)
    assert slow or whole.returncode == 1  # naive loses t1 of drop.yaml
    again = cli(work, "merge", "part1", "part1")
    assert again.returncode == 3 and "the same shard twice" in again.stderr


def test_bench_shards_merge_into_one_matrix(work: Path) -> None:
    args = ["s/ok.yaml", "--client", "naive", "--client", "reference", "--seeds", "2"]
    for k in (1, 2):
        assert cli(work, "bench", *args, "--shard", f"{k}/2", "--report-dir", f"b{k}").returncode == 0
    merged = cli(work, "merge", "b1", "b2", "--report-dir", "bm")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    data = json.loads((work / "bm" / "results.json").read_text())
    assert len(data["results"]) == 4 and {t["client"] for t in data["run"]["bench"]["client_totals"]} == {"naive", "reference"}
    gated = cli(work, "merge", "b1", "b2", "--report-dir", "bm2", "--baseline", "nothing-like-it.json")
    assert gated.returncode == 3 and "nothing-like-it.json: cannot read" in gated.stderr  # the gate applies to bench merges too


def test_the_serve_example_schedule_fires_under_serve() -> None:
    """No `task:` filter (an app's prompts are untagged) and no toxic (no Toxiproxy)."""
    from comfy_chaos.fake_comfy.cli import _unservable, _untagged_filters
    from comfy_chaos.fake_comfy.faults import load_schedule

    path = Path(__file__).resolve().parents[2] / "examples" / "serve-faults.yaml"
    schedule = load_schedule(path)
    assert len(schedule.faults) == 7
    assert _unservable(schedule, str(path)) is None and _untagged_filters(schedule, str(path)) == []
    from comfy_chaos.fake_comfy.faults.spec import FaultSchedule

    tagged = FaultSchedule.of([{"kind": "drop", "when": {"on": "message", "task": "t1"}}])
    assert "never match" in _untagged_filters(tagged, "f.yaml")[0]


@pytest.mark.parametrize("args", [["toxiproxy", "--port", "abc"], ["install", "no-such-adapter"], ["merge"],
                                  ["bench", "--seeds", "0"], ["shrink", "x.yaml"], ["report"]])
def test_other_commands_usage_errors_exit_3(work: Path, args: list[str]) -> None:
    run = cli(work, *args)
    assert run.returncode == 3, run.stdout + run.stderr
    assert run.stderr.strip() and "Traceback" not in run.stderr


def test_toxiproxy_port_in_use_exits_3(work: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = cli(work, "toxiproxy", "--port", str(sock.getsockname()[1]))
    assert busy.returncode == 3 and "cannot listen on" in busy.stderr
