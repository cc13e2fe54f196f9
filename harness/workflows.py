"""Named API-format workflows built from the fake server's node catalogue.

The shapes are the ones recorded from a real ComfyUI (`tests/data/comfyui-traces/README.md`,
section "Workflows"). Every call returns a fresh dict. A seed-derived input (the colour of
the first `EmptyImage`, and the SaveImage prefix) varies per task so that tasks do not hit
ComfyUI's cache — except `cached`, whose graph is the same for every task on purpose.
"""
from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

Workflow = dict[str, Any]


def _colour(seed: int, index: int) -> int:
    return random.Random(f"{seed}:{index}").randrange(0, 0xFFFFFF + 1)


def _basic(colour: int, prefix: str) -> Workflow:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 2, "color": colour}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": f"{prefix}/basic"}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


def _progress(colour: int, prefix: str) -> Workflow:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 128, "height": 128, "batch_size": 3, "color": colour}},
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }


def _slow(colour: int, prefix: str) -> Workflow:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1, "color": colour}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 31, "sigma": 10.0}},
        "3": {"class_type": "ImageBlur", "inputs": {"image": ["2", 0], "blur_radius": 31, "sigma": 9.9}},
        "4": {"class_type": "ImageBlur", "inputs": {"image": ["3", 0], "blur_radius": 31, "sigma": 9.8}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
    }


def _long(colour: int, prefix: str) -> Workflow:
    """One 8 s step with a progress bar (8 s at time scale 1): long enough that a queue of
    them is still busy seconds after a slow client (a browser page) has queued them all."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": colour}},
        "2": {"class_type": "ChaosProgress", "inputs": {"images": ["1", 0], "steps": 8, "seconds": 8.0}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }


def _error(colour: int, prefix: str) -> Workflow:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": colour}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "../../escape/x"}},
    }


def _latent(colour: int, prefix: str) -> Workflow:
    return {
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "2": {
            "class_type": "LatentUpscale",
            "inputs": {"samples": ["1", 0], "upscale_method": "nearest-exact", "width": 128, "height": 128, "crop": "disabled"},
        },
        "3": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": colour}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }


def _text(colour: int, prefix: str) -> Workflow:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 40, "height": 30, "batch_size": 2, "color": colour}},
        "2": {"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}},
        "3": {
            "class_type": "EmptyImage",
            "inputs": {"width": ["2", 0], "height": ["2", 1], "batch_size": 1, "color": colour ^ 1},
        },
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }


_BUILDERS: dict[str, Callable[[int, str], Workflow]] = {
    "basic": _basic,
    "progress": _progress,
    "slow": _slow,
    "long": _long,
    "error": _error,
    "cached": _basic,
    "latent": _latent,
    "text": _text,
}

WORKFLOW_NAMES: tuple[str, ...] = tuple(_BUILDERS)
"""Names a scenario may use for `workload.workflow` / `workload.mix[].workflow`."""

_CACHED_COLOUR = 0x336699


def build(ref: str | Workflow, *, seed: int = 0, index: int = 0) -> Workflow:
    """Return a fresh workflow for task number `index` of a run seeded with `seed`.

    `ref` is a name from `WORKFLOW_NAMES` or an inline API-format workflow (deep-copied,
    not varied: an inline graph is sent as written).
    """
    if isinstance(ref, dict):
        return copy.deepcopy(ref)
    try:
        builder = _BUILDERS[ref]
    except KeyError:
        raise ValueError(f"unknown workflow {ref!r}; expected one of {', '.join(WORKFLOW_NAMES)}") from None
    if ref == "cached":
        return builder(_CACHED_COLOUR, "chaos/cached")
    return builder(_colour(seed, index), f"chaos/s{seed}")


def check_api_format(workflow: Any) -> str | None:
    """Return why `workflow` is not an API-format graph, or None if it looks like one."""
    if not isinstance(workflow, dict) or not workflow:
        return "a non-empty mapping of node id to {class_type, inputs}"
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            return f"node {node_id!r} to be a mapping with a string class_type"
        if not isinstance(node.get("inputs", {}), dict):
            return f"node {node_id!r} inputs to be a mapping"
    return None
