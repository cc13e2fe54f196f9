"""Make `pytest scenarios/` collect every scenario file (see harness/pytest_plugin.py)."""
from comfy_chaos.harness.pytest_plugin import collect_scenario_file as pytest_collect_file  # noqa: F401 - hook for this directory
