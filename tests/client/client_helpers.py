"""Workflows and ledger helpers shared by the client's integration tests."""
from __future__ import annotations

import copy
from typing import Any

BASIC = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 2, "color": 3368601}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "client/basic"}},
    "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
}
RUNTIME_ERROR = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 4456516}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "../../escape/x"}},
}


def basic(index: int) -> dict[str, Any]:
    """A basic workflow with a colour per task, so the server's cache does not merge tasks."""
    wf = copy.deepcopy(BASIC)
    wf["1"]["inputs"]["color"] = (index * 7919) % 0xFFFFFF
    return wf


def ledger_images(outputs: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """(node, filename, subfolder, type) of every image in a history-style outputs dict."""
    found = set()
    for node, out in (outputs or {}).items():
        for image in (out or {}).get("images", []) if isinstance(out, dict) else []:
            found.add((str(node), image["filename"], image.get("subfolder", ""), image.get("type", "")))
    return found
