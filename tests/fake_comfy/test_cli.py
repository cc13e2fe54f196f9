"""`comfy-chaos serve` as a user runs it: prints the URL, serves, stops cleanly on Ctrl-C."""
from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp


async def test_serve_prints_url_and_stops_on_sigint(tmp_path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "comfy_chaos.fake_comfy.cli", "--port", "0", "--time-scale", "0", "--seed", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = ""
        async with asyncio.timeout(30):
            while "listening on" not in line:  # structlog lines may come first
                line = (await proc.stdout.readline()).decode()
                assert line, "serve exited before printing its URL"
        assert "listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ")[1].split()[0]
        async with aiohttp.ClientSession() as http, http.get(url + "/api/features") as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_bad_faults_file_is_a_clear_usage_error(tmp_path) -> None:
    bad = tmp_path / "faults.yaml"
    bad.write_text("- kind: no-such-kind\n  when: {at: 1}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "comfy_chaos.fake_comfy.cli", "--port", "0", "--faults", str(bad),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 3
    assert "no-such-kind" in err.decode() and "Traceback" not in err.decode()
