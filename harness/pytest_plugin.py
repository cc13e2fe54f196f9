"""pytest plugin (entry point `comfy_chaos`): runs scenario files as test items.

It loads in every pytest run in an environment where comfy-chaos is installed, so
everything here must be harmless outside `scenarios/`: options only, no fixtures with
side effects, collection only of scenario YAML files under a directory whose
conftest opts in (`scenarios/conftest.py`).
"""
from __future__ import annotations

import pytest


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
