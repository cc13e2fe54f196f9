"""Submit a few workflows with the reference client and print how each ended.

    python examples/submit_and_wait.py                      # starts a fake ComfyUI in-process
    python examples/submit_and_wait.py --url http://127.0.0.1:8188   # a real (or fake) server
    python examples/submit_and_wait.py --profile seed --time-scale 0.1

Without --url it starts `fake_comfy.FakeComfy` on an ephemeral loopback port and stops it
at the end. The workflows need no model weights (they run on a stock ComfyUI too): two
successes, one runtime error (SaveImage outside the output folder) and one the server
rejects at validation time.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

import structlog

from comfy_chaos.client import ClientConfig, ComfyClient, ProgressEvent, PromptRejected


def workflows() -> dict[str, dict[str, Any]]:
    empty = {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 3368601}}
    return {
        "basic": {
            "1": empty,
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "example/basic"}},
        },
        "preview": {
            "1": {**empty, "inputs": {**empty["inputs"], "color": 65280}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        },
        "runtime-error": {
            "1": empty,
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "../../escape/x"}},
        },
        "rejected": {"1": {"class_type": "NoSuchNodeClass", "inputs": {}}},
    }


async def run(url: str | None, profile: str, time_scale: float) -> int:
    server = None
    if url is None:
        from comfy_chaos.fake_comfy import FakeComfy, FakeConfig

        server = FakeComfy(FakeConfig(time_scale=time_scale, seed=1))
        await server.start(host="127.0.0.1", port=0)
        url = server.base_url
        print(f"started a fake ComfyUI at {url}")
    config = (ClientConfig.seed() if profile == "seed" else ClientConfig.reference()).scaled(time_scale)
    try:
        async with ComfyClient(url, config=config) as comfy:
            handles = {}
            for name, workflow in workflows().items():
                try:
                    handles[name] = await comfy.submit(workflow, on_progress=_printer(name))
                    print(f"{name:14} submitted as {handles[name].prompt_id}")
                except PromptRejected as exc:
                    error = exc.body.get("error", {}) if isinstance(exc.body, dict) else {}
                    print(f"{name:14} rejected: {error.get('type')}: {error.get('message')}")
            for name, handle in handles.items():
                outcome = await handle.result()
                files = [img["filename"] for out in outcome.outputs.values() for img in out.get("images", [])]
                detail = outcome.detail.splitlines()[0] if outcome.detail else ""
                print(f"{name:14} {outcome.status:12} via {outcome.source:11} files={files} {detail}")
            print("stats:", comfy.stats.to_dict())
    finally:
        if server is not None:
            await server.stop()
    return 0


def _printer(name: str):
    def on_progress(event: ProgressEvent) -> None:
        if event.kind in ("executing", "progress"):
            step = "" if event.value is None else f" {event.value:g}/{event.max:g}"
            print(f"{name:14}   {event.kind} node {event.node}{step}")

    return on_progress


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="ComfyUI base URL; omitted: start a fake one in-process")
    parser.add_argument("--profile", choices=["reference", "seed"], default="reference")
    parser.add_argument("--time-scale", type=float, default=0.1, help="multiplies every client (and fake) timing")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the client's structlog events")
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error(f"--time-scale must be > 0, got {args.time_scale}")
    level = logging.INFO if args.verbose else logging.WARNING
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    return asyncio.run(run(args.url, args.profile, args.time_scale))


if __name__ == "__main__":
    sys.exit(main())
