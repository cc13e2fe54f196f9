"""Load a fault schedule from YAML or JSON (`comfy-chaos serve --faults FILE`)."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from fake_comfy.faults.spec import FaultConfigError, FaultSchedule


def load_schedule(path: str | Path) -> FaultSchedule:
    """Read a list of fault specs (or `{faults: [...]}`) from a .yaml/.yml/.json file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaultConfigError(f"{path}: cannot read fault schedule: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
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
