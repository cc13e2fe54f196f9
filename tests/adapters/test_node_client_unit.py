"""Runs the Node example client's own unit tests (`node --test adapters/node/test/`).

They need only `node` (no npm packages, no network): they replay frames and history
entries recorded from a real ComfyUI through `adapters/node/comfy_client.js`.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_TESTS = REPO / "adapters" / "node" / "test"


def test_node_client_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("executable 'node' not on PATH; the Node example client needs Node >= 20")
    completed = subprocess.run(
        [node, "--test", str(NODE_TESTS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = completed.stdout + completed.stderr
    assert completed.returncode == 0, report
    assert "# fail 0" in report and "# pass 0" not in report, report
