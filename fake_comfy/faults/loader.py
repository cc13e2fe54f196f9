"""Load a fault schedule from YAML or JSON (`comfy-chaos serve --faults FILE`)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from comfy_chaos.fake_comfy.faults.spec import FaultConfigError, FaultSchedule


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, so the trigger key `on:` stays a string
    (YAML 1.1 reads on/off/yes/no as booleans). Same rule as harness.scenario."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_yaml(text: str) -> Any:
    """Parse YAML with YAML 1.2 booleans."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def load_schedule(path: str | Path) -> FaultSchedule:
    """Read a list of fault specs (or `{faults: [...]}`) from a .yaml/.yml/.json file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaultConfigError(f"{path}: cannot read fault schedule: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else parse_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise FaultConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None
    if data is None:
        data = []
    if isinstance(data, dict) and set(data) == {"faults"}:
        data = data["faults"] or []
    if not isinstance(data, list):
        raise FaultConfigError(
            f"{path}: expected a list of faults or a mapping with only 'faults', got {type(data).__name__}"
        )
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise FaultConfigError(
                f"{path}: fault #{index}: expected a mapping with 'kind', got {type(entry).__name__}"
            )
    return FaultSchedule.of(data, source=str(path))
