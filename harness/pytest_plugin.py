"""pytest plugin (entry point `comfy_chaos`): scenario files as test items.

It loads in every pytest run in an environment where comfy-chaos is installed, so
everything here is harmless elsewhere: its options are all prefixed `--chaos-` (each also
an ini key: `chaos_client`, `chaos_seed`, …; the command line wins), it registers the
Toxiproxy fixtures (lazy, nothing starts unless a test asks for them), and it collects YAML
files only under a directory whose conftest opts in with

    from comfy_chaos.harness.pytest_plugin import collect_scenario_file as pytest_collect_file

The built-in library has that conftest: `pytest --pyargs comfy_chaos.scenarios` runs it from
any repository (see README, "Use from your own repository").

Each scenario file gives one item per `--chaos-client`. Items run on one event loop per
pytest process with one Toxiproxy backend, resolved at the first scenario item and stopped at
the end; under xdist every worker has its own (no shared ports or files). Scored results
travel to the controller in the test reports (`user_properties`), which writes
`--chaos-report-dir` and checks `--chaos-baseline` at the end.

Outcomes: pass → passed; fail → failed; inconclusive → its own category ("N inconclusive"
in the summary, letter I), which fails the session with `--chaos-fail-on-inconclusive`;
with `--chaos-baseline`, a failure the baseline already had → xfailed (a known failure),
a new one → failed.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

RESULT_PROPERTY = "comfy_chaos_result"
BACKEND_PROPERTY = "comfy_chaos_toxiproxy"
_STATE = pytest.StashKey["_ChaosState"]()


@dataclass(frozen=True)
class _Option:
    name: str  # --chaos-<name>, ini chaos_<name with _>
    help: str
    kind: str = "string"  # string | int | float | bool | list


OPTIONS = (
    _Option("client", "client adapter to run every scenario with (repeatable; default: reference)", "list"),
    _Option("seed", "override every scenario's seed", "int"),
    _Option("time-scale", "override every scenario's time_scale (0.01 to 10)", "float"),
    _Option("report-dir", "write results.json + index.html + logs/ here at the end of the session"),
    _Option("baseline", "gate on this baseline: known failures xfail, new ones fail; fail the session on a regression"),
    _Option("run-slow", "also run scenarios tagged slow", "bool"),
    _Option("fail-on-inconclusive", "fail the session when a scenario is inconclusive", "bool"),
    _Option("shard", "run only the K-th of N deterministic parts of the scenario items (K/N)"),
    _Option("comfyui-version", "the ComfyUI version the fake server imitates: 0.3.64 or 0.33 (default: each "
            "scenario's comfyui_version, else the newest)"),
    _Option("scenarios", "a folder whose YAML files are scenario items (repeatable; 'builtin' = the built-in "
            "library); with no paths on the command line, pytest also collects these folders", "list"),
    _Option("no-control", "skip the fault-free control runs (attribution unknown)", "bool"),
    _Option("unscalable", "run this client at time scale 1.0: its timers do not scale (repeatable)", "list"),
)


def _dest(option: _Option) -> str:
    return "chaos_" + option.name.replace("-", "_")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("comfy-chaos", "comfy-chaos scenario runs (each option also an ini key chaos_...)")
    for option in OPTIONS:
        dest = _dest(option)
        if option.kind == "bool":
            group.addoption(f"--chaos-{option.name}", action="store_true", default=None, dest=dest, help=option.help)
            parser.addini(dest, option.help, type="bool", default=False)
        elif option.kind == "list":
            group.addoption(f"--chaos-{option.name}", action="append", default=None, dest=dest, help=option.help)
            parser.addini(dest, option.help + " (whitespace-separated)", type="args", default=[])
        else:
            group.addoption(f"--chaos-{option.name}", default=None, dest=dest, help=option.help)
            parser.addini(dest, option.help, type="string", default="")


def chaos_option(config: pytest.Config, name: str) -> Any:
    """`--chaos-<name>` if given, else the ini key `chaos_<name>`, typed; None/False/[] unset."""
    option = next(o for o in OPTIONS if o.name == name)
    dest = _dest(option)
    value = config.getoption(dest)
    if value is None:
        value = config.getini(dest)
    if option.kind == "bool":
        return bool(value)
    if option.kind == "list":
        return list(value or [])
    if value in (None, ""):
        return None
    if option.kind in ("int", "float"):
        convert = int if option.kind == "int" else float
        try:
            return convert(value)
        except (TypeError, ValueError):
            raise pytest.UsageError(f"--chaos-{name} / ini {dest}: expected a number, got {value!r}") from None
    return str(value)


def _check_options(config: pytest.Config) -> None:
    """Bad values are usage errors (pytest exit 4) before anything runs."""
    time_scale = chaos_option(config, "time-scale")
    from comfy_chaos.harness.scenario import MAX_TIME_SCALE, MIN_TIME_SCALE

    if time_scale is not None and not MIN_TIME_SCALE <= time_scale <= MAX_TIME_SCALE:
        raise pytest.UsageError(f"--chaos-time-scale: expected a number in [{MIN_TIME_SCALE:g}, {MAX_TIME_SCALE:g}], "
                                f"got {time_scale}")
    chaos_option(config, "seed")
    comfyui_version(config)
    shard = chaos_option(config, "shard")
    if shard is not None:
        from comfy_chaos.harness.shard import ShardError, parse_shard

        try:
            parse_shard(shard)
        except ShardError as exc:
            raise pytest.UsageError(f"--chaos-shard: {exc}") from None


def comfyui_version(config: pytest.Config) -> str | None:
    """--chaos-comfyui-version as a profile name (None: each scenario's own)."""
    from comfy_chaos.fake_comfy.profiles import get_profile

    value = chaos_option(config, "comfyui-version")
    try:
        return None if value is None else get_profile(value).name
    except ValueError as exc:
        raise pytest.UsageError(f"--chaos-comfyui-version: {exc}") from None


def named_scenario_folders(config: pytest.Config) -> list[Path]:
    """The --chaos-scenarios folders ('builtin': the built-in library), resolved."""
    from comfy_chaos.harness.resources import builtin_scenarios

    return list(dict.fromkeys(
        builtin_scenarios().resolve() if raw == "builtin" else (config.invocation_params.dir / raw).resolve()
        for raw in chaos_option(config, "scenarios")))


def scenario_roots(config: pytest.Config) -> list[Path]:
    """The built-in library (always a scenario folder) and the --chaos-scenarios folders."""
    from comfy_chaos.harness.resources import builtin_scenarios

    return list(dict.fromkeys([builtin_scenarios().resolve(), *named_scenario_folders(config)]))


def pytest_configure(config: pytest.Config) -> None:
    _check_options(config)
    config.addinivalue_line("markers", "slow: comfy-chaos scenario tagged slow (run with --chaos-run-slow)")
    named = named_scenario_folders(config)
    missing = [str(p) for p in named if not p.is_dir()]
    if missing:
        raise pytest.UsageError(f"--chaos-scenarios: no such folder: {', '.join(missing)}")
    if named and config.args_source != pytest.Config.ArgsSource.ARGS:
        # no paths on the command line: also collect the named folders that pytest would not
        # reach from its own arguments (the built-in library lives in site-packages)
        given = [(config.invocation_params.dir / a).resolve() for a in config.args]
        config.args.extend(str(p) for p in named if not any(p.is_relative_to(g) for g in given))
    state = _ChaosState(config)
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "comfy_chaos_state")
    fixtures = "comfy_chaos.harness.toxiproxy.fixtures"
    if find_spec("comfy_chaos.harness.toxiproxy") is not None and find_spec(fixtures) is not None \
            and not config.pluginmanager.has_plugin(fixtures):
        config.pluginmanager.import_plugin(fixtures)


def collect_scenario_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    """The `pytest_collect_file` hook for a scenario directory's conftest (not global)."""
    if file_path.suffix == ".yaml":
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    """YAML files under a scenario folder (the built-in library, --chaos-scenarios) — unless
    that folder's own conftest collects them already."""
    if file_path.suffix != ".yaml" or not any(file_path.is_relative_to(r) for r in parent.config.stash[_STATE].roots):
        return None
    for folder in file_path.parents:
        if _opts_in(folder / "conftest.py"):
            return None
    return ScenarioFile.from_parent(parent, path=file_path)


def _opts_in(conftest: Path) -> bool:
    try:
        return conftest.is_file() and "collect_scenario_file" in conftest.read_text(encoding="utf-8")
    except OSError:
        return False


def _result_of(report: Any) -> dict[str, Any] | None:
    for name, value in getattr(report, "user_properties", ()):
        if name == RESULT_PROPERTY:
            data: dict[str, Any] = json.loads(value)
            return data
    return None


class _ChaosState:
    """Per pytest process: the event loop and Toxiproxy backend for scenario items, and
    (on the controller) the scored results for the report and the baseline check."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.loop: asyncio.AbstractEventLoop | None = None
        self.harness: Any = None
        self.results: list[dict[str, Any]] = []
        self.summary: list[str] = []
        self.inconclusive: list[str] = []
        self.backends: dict[str, None] = {}  # JSON of each worker's backend description, in order
        self._baseline: Any = None
        self.roots = scenario_roots(config)

    # --- hooks (this object is registered as a plugin) -----------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        report_dir = chaos_option(self.config, "report-dir")
        if report_dir and not hasattr(self.config, "workerinput"):
            import shutil

            shutil.rmtree(Path(report_dir) / "logs", ignore_errors=True)  # no stale logs of an earlier session

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Deselect slow scenarios unless --chaos-run-slow or a -m expression naming slow;
        with --chaos-shard K/N keep only this shard's scenario items."""
        keep: list[pytest.Item] = []
        drop: list[pytest.Item] = []
        run_slow = chaos_option(config, "run-slow") or "slow" in (config.getoption("markexpr") or "")
        for item in items:
            slow = isinstance(item, ScenarioItem) and item.get_closest_marker("slow") is not None
            (drop if slow and not run_slow else keep).append(item)
        shard = chaos_option(config, "shard")
        if shard is not None:
            from comfy_chaos.harness.shard import job_key, parse_shard

            seed = chaos_option(config, "seed")
            scenario_items = [i for i in keep if isinstance(i, ScenarioItem)]
            mine = {id(i) for i in parse_shard(shard).select(scenario_items, lambda i: job_key(i.scenario, i.client, seed))}
            drop += [i for i in scenario_items if id(i) not in mine]
            keep = [i for i in keep if not isinstance(i, ScenarioItem) or id(i) in mine]
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        result = _result_of(report)
        if result is not None:
            self.results.append(result)
            if result.get("verdict") == "inconclusive":
                self.inconclusive.append(f"{report.nodeid}: " + " | ".join(result.get("reasons", [])))
        for name, value in report.user_properties:
            if name == BACKEND_PROPERTY:
                self.backends.setdefault(str(value), None)

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        """An inconclusive scenario is its own outcome, not a skip: `I`, `INCONCLUSIVE`."""
        if report.when == "call" and report.skipped:
            result = _result_of(report)
            if result is not None and result.get("verdict") == "inconclusive":
                return "inconclusive", "I", ("INCONCLUSIVE", {"yellow": True})
        return None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.close()
        if hasattr(self.config, "workerinput") or not self.results:
            return  # an xdist worker: its results went to the controller in the reports
        if self.finish() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.inconclusive:
            terminalreporter.section("comfy-chaos inconclusive", sep="-", yellow=True)
            for line in self.inconclusive:
                terminalreporter.write_line(f"INCONCLUSIVE {line}")
        for line in self.summary:
            terminalreporter.write_line(line)

    # --- running -------------------------------------------------------------------------

    def run(self, coro: Any) -> Any:
        """Run a coroutine on this process's scenario loop (kept for the backend's lifetime)."""
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
        task = self.loop.create_task(coro)
        try:
            return self.loop.run_until_complete(task)
        except BaseException:  # Ctrl-C: let the run tear down before pytest stops
            task.cancel()
            self.loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
            raise

    async def get_harness(self) -> Any:
        if self.harness is None:
            from comfy_chaos.harness.eventlog import configure
            from comfy_chaos.harness.runner import Harness

            configure(logging.WARNING)  # every run's events are captured per run; pytest shows only warnings
            report_dir = chaos_option(self.config, "report-dir")
            log_dir = Path(report_dir) / "logs" if report_dir else None
            harness = Harness(
                log_dir=log_dir,
                control=not chaos_option(self.config, "no-control"),
                unscalable=chaos_option(self.config, "unscalable"),
            )
            await harness.__aenter__()
            self.harness = harness
        return self.harness

    def close(self) -> None:
        if self.loop is None:
            return
        try:
            if self.harness is not None:
                self.loop.run_until_complete(self.harness.__aexit__(None, None, None))
        finally:
            self.harness = None
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            self.loop = None

    def baseline(self) -> Any:
        """The --chaos-baseline file, read once per process (None without one)."""
        path = chaos_option(self.config, "baseline")
        if path and self._baseline is None:
            from comfy_chaos.harness.results import ResultsError, load_results

            try:
                self._baseline = load_results(path)
            except ResultsError as exc:
                raise pytest.UsageError(f"--chaos-baseline: {exc}") from None
        return self._baseline

    def finish(self) -> bool:
        """Write the report and decide the gate; True when the session must fail."""
        from comfy_chaos.harness.cli.progress import describe_backend
        from comfy_chaos.harness.results import ResultsFile, ScenarioResult
        from comfy_chaos.harness.suite import run_info, write_report

        results = [ScenarioResult.from_dict(r) for r in self.results]
        report_dir = chaos_option(self.config, "report-dir")
        fail_on_inconclusive = chaos_option(self.config, "fail-on-inconclusive")
        if report_dir:
            info = run_info(runner="pytest", shard=chaos_option(self.config, "shard"))
            backends = [json.loads(b) for b in self.backends]
            info["toxiproxy"] = "; ".join(dict.fromkeys(describe_backend(b) for b in backends))
            info["toxiproxy_backend"] = backends[0] if len(backends) == 1 else backends
            path = write_report(results, report_dir, info)
            self.summary.append(f"comfy-chaos: results written to {path} and {Path(report_dir) / 'index.html'}")
        failed = False
        if self.baseline() is not None:
            from comfy_chaos.harness.baseline import compare, gate

            comparison = compare(ResultsFile(run={}, results=results), self.baseline())
            if comparison.regressions:
                self.summary.append("comfy-chaos: regressions against the baseline:")
                self.summary.extend(f"  {r}" for r in comparison.regressions)
            decision = gate(comparison, chaos_option(self.config, "baseline"), fail_on_inconclusive=fail_on_inconclusive)
            self.summary.append(f"comfy-chaos: {decision.summary}")
            failed = decision.code != 0
        elif fail_on_inconclusive and self.inconclusive:
            self.summary.append(f"comfy-chaos: {len(self.inconclusive)} inconclusive scenario run(s) and "
                                "--chaos-fail-on-inconclusive: the session fails")
            failed = True
        return failed


class ScenarioFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        from comfy_chaos.harness.scenario import ScenarioError, load_scenario

        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            return [BrokenScenarioItem.from_parent(self, name="load", error=str(exc))]
        clients = chaos_option(self.config, "client") or ["reference"]
        items: list[pytest.Item] = []
        for client in dict.fromkeys(clients):
            item = ScenarioItem.from_parent(self, name=f"{scenario.name}[{client}]", scenario=scenario, client=client)
            if "slow" in scenario.tags:
                item.add_marker(pytest.mark.slow)
            items.append(item)
        return items


class ScenarioFailed(Exception):
    """A scenario's verdict was fail; the message is the scorer's reasons."""


class BrokenScenarioItem(pytest.Item):
    def __init__(self, *, error: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise ScenarioFailed(f"scenario file is invalid:\n{self.error}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.path.name}: invalid scenario"


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, client: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.client = client

    def runtest(self) -> None:
        from comfy_chaos.harness.adapters import AdapterError
        from comfy_chaos.harness.suite import run_one
        from comfy_chaos.harness.toxiproxy.backend import BackendError

        state: _ChaosState = self.config.stash[_STATE]
        seed = chaos_option(self.config, "seed")
        time_scale = chaos_option(self.config, "time-scale")
        from comfy_chaos.harness.comfyui_version import with_version

        scenario = with_version(self.scenario, comfyui_version(self.config))

        async def go() -> Any:
            harness = await state.get_harness()
            return await run_one(harness, scenario, self.client, seed=seed, time_scale=time_scale)

        try:
            result = state.run(go())
        except (AdapterError, BackendError) as exc:
            raise ScenarioFailed(str(exc)) from None
        self.user_properties.append((RESULT_PROPERTY, json.dumps(result.to_dict(), default=str)))
        if state.harness is not None:
            self.user_properties.append((BACKEND_PROPERTY, json.dumps(state.harness.backend_info, sort_keys=True)))
        if result.verdict == "fail":
            known = self._known_failure(state, result)
            if known:
                pytest.xfail(f"known failure (the baseline has it too): {known}")
            raise ScenarioFailed("\n".join(result.reasons))
        if result.verdict == "inconclusive":
            pytest.skip("inconclusive: " + " | ".join(result.reasons))

    @staticmethod
    def _known_failure(state: _ChaosState, result: Any) -> str | None:
        """With a baseline that has this scenario × client failing the same way: its reasons."""
        baseline = state.baseline()
        if baseline is None:
            return None
        from comfy_chaos.harness.baseline import compare
        from comfy_chaos.harness.results import ResultsFile

        comparison = compare(ResultsFile(run={}, results=[result]), baseline)
        if comparison.matched and not comparison.regressions:
            return " | ".join(result.reasons)
        return None

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.scenario.name} [{self.client}]"
