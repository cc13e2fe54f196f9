"""SIGTERM, SIGINT and fatal errors in the middle of `comfy-chaos run` leave nothing behind:
no client process (not even a grandchild that left the process group with setsid()), no
listener, no fake-server scratch folder, and the CLI says so only when it is true.

Each test runs the CLI as a child process with its own scratch folder
($COMFY_CHAOS_SCRATCH_DIR), so other tests' servers do not count. Waits are bounded
polls of the process table; nothing asserts on speed.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # signals to `comfy-chaos run` suites in child processes

ESCAPER = Path(__file__).with_name("escaper.py")
LONG = """
seed: {seed}
workload: {{tasks: 2, workflow: basic}}
deadline: 600
grace: 500
"""
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 120.0


def _processes_with(marker: str) -> dict[int, int]:
    """pid → session id of every live process whose command line contains `marker`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if marker in cmdline and stat[0] != "Z":
            found[int(entry.name)] = int(stat[3])
    return found


def _wait_until(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # polling the process table, bounded
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.05)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "s").mkdir()
    for seed in (1, 2):
        (tmp_path / "s" / f"long{seed}.yaml").write_text(LONG.format(seed=seed))
    (tmp_path / "scratch").mkdir()
    return tmp_path


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_suite_stops_every_process_listener_and_folder(suite: Path, sig: signal.Signals) -> None:
    marker = f"escaper-{uuid.uuid4().hex}"
    env = dict(os.environ, COMFY_CHAOS_SCRATCH_DIR=str(suite / "scratch"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "comfy_chaos.harness.cli", "run", "s", "-j", "2",
         "--client", f"cmd:{sys.executable} {ESCAPER} {marker}"],
        cwd=suite, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def clients() -> dict[int, int]:
            return {pid: sid for pid, sid in _processes_with(marker).items() if pid != proc.pid}

        # Both runs under way: 2 adapters, each with a grandchild and an escaper that has
        # called setsid() (4 sessions: 2 adapters' own, 2 escapers').
        _wait_until(lambda: (len(clients()) >= 6 and len(set(clients().values())) >= 4) or proc.poll() is not None,
                    "two adapters and their four grandchildren, two in sessions of their own", START_TIMEOUT_S)
        assert proc.poll() is None, proc.communicate()
        assert len(os.listdir(suite / "scratch")) == 2, os.listdir(suite / "scratch")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=STOP_TIMEOUT_S)
    finally:
        proc.kill()
        proc.wait()
    _wait_until(lambda: not _processes_with(marker), f"every process marked {marker} gone", 10.0)
    assert os.listdir(suite / "scratch") == []
    url = next(line for line in out.splitlines() if "toxiproxy" in line).rsplit(" at ", 1)[1]
    assert not _listening(int(url.rsplit(":", 1)[1])), f"the Toxiproxy API at {url} still listens"
    assert proc.returncode == 2, out + err
    assert f"interrupted ({sig.name}); everything started was stopped" in err, err


FATAL = """
import asyncio, sys
from pathlib import Path
from comfy_chaos.harness import suite
from comfy_chaos.harness.cli import common
from comfy_chaos.harness.scenario import load_scenario

real_run_one = suite.run_one

async def run_one(harness, scenario, client, **kw):
    if scenario.seed == 2:  # the second run dies of a fatal error while the first is running
        await asyncio.sleep(1.0)
        raise MemoryError("simulated")
    return await real_run_one(harness, scenario, client, **kw)

suite.run_one = run_one

from comfy_chaos.fake_comfy.server import FakeComfy
real_stop_tasks = FakeComfy._stop_tasks

async def stop_tasks(self):  # and the server's own teardown dies of one too
    await real_stop_tasks(self)
    raise MemoryError("simulated in teardown")

FakeComfy._stop_tasks = stop_tasks
jobs = [(load_scenario(Path(f"s/long{seed}.yaml")), "reference") for seed in (1, 2)]
try:
    common.execute(jobs, seed=None, time_scale=None, parallel=2)
except MemoryError:
    print("MemoryError raised")
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_fatal_error_mid_suite_removes_every_scratch_folder(suite: Path) -> None:
    env = dict(os.environ, COMFY_CHAOS_SCRATCH_DIR=str(suite / "scratch"))
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(FATAL)], cwd=suite, env=env, capture_output=True,
                         text=True, timeout=STOP_TIMEOUT_S)
    assert "MemoryError raised" in run.stdout, run.stdout + run.stderr
    assert os.listdir(suite / "scratch") == []
