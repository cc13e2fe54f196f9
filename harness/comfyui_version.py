"""`--comfyui-version`: which ComfyUI version the fake server imitates, for `run`, `replay`,
`bench` and pytest (`serve` has its own, in fake_comfy.cli).

The option overrides every scenario's `comfyui_version` key (as `--time-scale` overrides
`time_scale`); without it each scenario runs against its own key, else the newest profile.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from comfy_chaos.fake_comfy.profiles import DEFAULT_VERSION, VERSION_NAMES, get_profile

if TYPE_CHECKING:
    from comfy_chaos.harness.scenario import Scenario

HELP = (
    f"the ComfyUI version the fake server imitates: {', '.join(VERSION_NAMES)} "
    f"(default: each scenario's comfyui_version, else {DEFAULT_VERSION})"
)


def version_arg(value: str) -> str:
    """argparse type: a known profile name (or the version it reports, e.g. 0.33.0)."""
    try:
        return get_profile(value).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_option(parser: Any, dest: str = "comfyui_version") -> None:
    """Add `--comfyui-version` to an argparse parser or a pytest option group."""
    if isinstance(parser, argparse.ArgumentParser):
        parser.add_argument("--comfyui-version", type=version_arg, default=None, dest=dest, metavar="VERSION", help=HELP)
    else:
        parser.addoption("--comfyui-version", type=version_arg, default=None, dest=dest, metavar="VERSION", help=HELP)


def with_version(scenario: Scenario, version: str | None) -> Scenario:
    """`scenario` run against `version` (None: unchanged)."""
    if version is None or version == scenario.comfyui_version:
        return scenario
    return scenario.model_copy(update={"comfyui_version": version})  # keeps `source`
