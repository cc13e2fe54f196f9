"""pytest plugin (entry point `comfy_chaos`): scenario files as test items.

It loads in every pytest run in an environment where comfy-chaos is installed, so
everything here is harmless outside `scenarios/`: it adds options, registers the
Toxiproxy fixtures (lazy, nothing starts unless a test asks for them), and collects
YAML files only under a directory whose conftest opts in with

    from comfy_chaos.harness.pytest_plugin import pytest_collect_file   # scenarios/conftest.py

Each scenario file gives one item per `--client`. Items run on one event loop per pytest
process with one Toxiproxy backend, resolved at the first scenario item and stopped at
the end; under xdist every worker has its own (no shared ports or files). Scored results
travel to the controller in the test reports (`user_properties`), which writes
`--report-dir` and checks `--baseline` at the end.
"""
from __future__ import annotations

import asyncio
import json
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

RESULT_PROPERTY = "comfy_chaos_result"
_STATE = pytest.StashKey["_ChaosState"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("comfy-chaos", "comfy-chaos scenario runs")
    group.addoption("--client", action="append", default=None, dest="chaos_clients",
                    help="client adapter to run every scenario with (repeatable; default: reference)")
    group.addoption("--seed", type=int, default=None, dest="chaos_seed",
                    help="override every scenario's seed")
    group.addoption("--time-scale", type=float, default=None, dest="chaos_time_scale",
                    help="override every scenario's time_scale")
    group.addoption("--report-dir", default=None, dest="chaos_report_dir",
                    help="write results.json + index.html here at the end of the session")
    group.addoption("--baseline", default=None, dest="chaos_baseline",
                    help="fail the session on a regression against this baseline file")
    group.addoption("--run-slow", action="store_true", default=False, dest="chaos_run_slow",
                    help="also run scenarios tagged slow")
    from comfy_chaos.harness import comfyui_version

    comfyui_version.add_option(group, dest="chaos_comfyui_version")


def pytest_configure(config: pytest.Config) -> None:
    state = _ChaosState(config)
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "comfy_chaos_state")
    if find_spec("comfy_chaos.harness.toxiproxy") is not None and find_spec("comfy_chaos.harness.toxiproxy.fixtures") is not None:
        if not config.pluginmanager.has_plugin("comfy_chaos.harness.toxiproxy.fixtures"):
            config.pluginmanager.import_plugin("comfy_chaos.harness.toxiproxy.fixtures")


def collect_scenario_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    """The `pytest_collect_file` hook for a scenario directory's conftest (not global)."""
    if file_path.suffix == ".yaml":
        return ScenarioFile.from_parent(parent, path=file_path)
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

    # --- hooks (this object is registered as a plugin) -----------------------------------

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Deselect slow scenarios unless --run-slow or a -m expression naming slow."""
        if config.getoption("chaos_run_slow") or "slow" in (config.getoption("markexpr") or ""):
            return
        keep, drop = [], []
        for item in items:
            (drop if isinstance(item, ScenarioItem) and item.get_closest_marker("slow") else keep).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:
                self.results.append(json.loads(value))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.close()
        if hasattr(self.config, "workerinput") or not self.results:
            return  # an xdist worker: its results went to the controller in the reports
        if self.finish() is not None and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
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
            from comfy_chaos.harness.runner import Harness

            report_dir = self.config.getoption("chaos_report_dir")
            log_dir = None
            if report_dir:
                import logging

                from comfy_chaos.harness.eventlog import configure

                configure(logging.WARNING)  # captured per run; pytest shows only warnings
                log_dir = Path(report_dir) / "logs"
            harness = Harness(log_dir=log_dir)
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

    def finish(self) -> str | None:
        """Write the report and check the baseline; returns a failure message or None."""
        from comfy_chaos.harness.results import ScenarioResult
        from comfy_chaos.harness.suite import run_info, write_report

        results = [ScenarioResult.from_dict(r) for r in self.results]
        report_dir = self.config.getoption("chaos_report_dir")
        if report_dir:
            path = write_report(results, report_dir, run_info(runner="pytest"))
            self.summary.append(f"comfy-chaos: results written to {path} and {Path(report_dir) / 'index.html'}")
        baseline = self.config.getoption("chaos_baseline")
        if baseline:
            from comfy_chaos.harness.baseline import check_baseline

            problems = check_baseline(results, baseline)
            if problems:
                self.summary.append("comfy-chaos: regressions against the baseline:")
                self.summary.extend(f"  {line}" for line in problems)
                return "\n".join(problems)
            self.summary.append(f"comfy-chaos: no regression against {baseline}")
        return None


class ScenarioFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        from comfy_chaos.harness.scenario import ScenarioError, load_scenario

        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            return [BrokenScenarioItem.from_parent(self, name="load", error=str(exc))]
        clients = self.config.getoption("chaos_clients") or ["reference"]
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

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
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

        state: _ChaosState = self.config.stash[_STATE]
        seed = self.config.getoption("chaos_seed")
        time_scale = self.config.getoption("chaos_time_scale")

        from comfy_chaos.harness.comfyui_version import with_version

        scenario = with_version(self.scenario, self.config.getoption("chaos_comfyui_version"))

        async def go() -> Any:
            harness = await state.get_harness()
            return await run_one(harness, scenario, self.client, seed=seed, time_scale=time_scale)

        try:
            result = state.run(go())
        except AdapterError as exc:
            raise ScenarioFailed(str(exc)) from None
        self.user_properties.append((RESULT_PROPERTY, json.dumps(result.to_dict(), default=str)))
        if result.verdict == "fail":
            raise ScenarioFailed("\n".join(result.reasons))
        if result.verdict == "inconclusive":
            pytest.skip("inconclusive: " + " | ".join(result.reasons))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.scenario.name} [{self.client}]"
