"""The protocol profiles: each switch of `0.33` against `0.3.64`, through the core and over HTTP/WS.

The trace replays (test_conformance.py) check the recorded situations; these tests pin the
rules behind them (what consumes a queue number, what a cancel does to the queue, the
exact header match, ...) and the ways of selecting a profile.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
from comfy_chaos.fake_comfy.core import ComfyCore, is_canonical_uuid
from comfy_chaos.fake_comfy.events import EventBus
from comfy_chaos.fake_comfy.faults import FaultEngine, FaultSchedule
from comfy_chaos.fake_comfy.faults.spec import FaultSpec
from comfy_chaos.fake_comfy.ledger import Ledger
from comfy_chaos.fake_comfy.profiles import DEFAULT_VERSION, V0_3_64, V0_33, get_profile
from comfy_chaos.fake_comfy.testing import W_BASIC, finished, receive_json_until

SLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
    "2": {"class_type": "ChaosSleep", "inputs": {"seconds": 30.0, "images": ["1", 0]}},
    "3": {"class_type": "ChaosSleep", "inputs": {"seconds": 30.0, "images": ["2", 0]}},
    "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
}


def core_of(profile: Any) -> ComfyCore:
    return ComfyCore(clock=lambda: 1.0, wall_ms=lambda: 1_800_000_000_000, ledger=Ledger(), events=EventBus(), profile=profile)


def test_default_is_the_newest_profile_and_names_are_checked() -> None:
    assert DEFAULT_VERSION == "0.33"
    assert FakeConfig().profile is V0_33
    assert get_profile("0.33.0") is V0_33  # the version string /system_stats reports works too
    assert FakeConfig(comfyui_version="0.3.64").profile is V0_3_64
    with pytest.raises(ValueError, match="expected one of 0.3.64, 0.33"):
        FakeConfig(comfyui_version="0.34")


@pytest.mark.parametrize(
    "value",
    ["my-own-id-0001", 12345, "12AA0000-0000-4000-8000-000000000012", "12aa00000000400080000000000000012",
     "{12aa0000-0000-4000-8000-000000000012}", "urn:uuid:12aa0000-0000-4000-8000-000000000012", ""],
)  # fmt: skip
def test_non_canonical_prompt_id_is_refused_after_taking_a_number(value: Any) -> None:
    core = core_of(V0_33)
    result = core.submit({"prompt": W_BASIC, "prompt_id": value})
    assert result.status == 400
    assert result.body["error"]["type"] == "invalid_prompt_id" and result.body["node_errors"] == {}
    assert result.frames == [] and core.idle
    accepted = core.submit({"prompt": W_BASIC})
    assert accepted.body["number"] == 1  # the refused one used number 0, as recorded (09, 12)


def test_canonical_or_null_prompt_id_and_the_old_rule() -> None:
    core = core_of(V0_33)
    pid = "12aa0000-0000-4000-8000-000000000012"
    assert core.submit({"prompt": W_BASIC, "prompt_id": pid}).body["prompt_id"] == pid
    made = core.submit({"prompt": W_BASIC, "prompt_id": None}).body["prompt_id"]
    assert is_canonical_uuid(made)
    old = core_of(V0_3_64)
    assert old.submit({"prompt": W_BASIC, "prompt_id": 12345}).body["prompt_id"] == "12345"
    assert not is_canonical_uuid(12345) and not is_canonical_uuid(pid.upper())


def test_unknown_and_missing_class_type_bodies_per_profile() -> None:
    unknown = {**W_BASIC, "9": {"class_type": "NoSuchNodeClass", "inputs": {}}}
    new = core_of(V0_33).submit({"prompt": unknown}).body["error"]
    assert new == {
        "type": "missing_node_type",
        "message": "Node 'NoSuchNodeClass' not found. The custom node may not be installed.",
        "details": "Node ID '#9'",
        "extra_info": {"node_id": "9", "class_type": "NoSuchNodeClass", "node_title": "NoSuchNodeClass"},
    }
    missing = core_of(V0_33).submit({"prompt": {"2": {"inputs": {}}}}).body["error"]
    assert missing["message"].startswith("Node 'ID #2' has no class_type.")
    assert missing["extra_info"] == {"node_id": "2", "class_type": None, "node_title": None}
    titled = core_of(V0_33).submit({"prompt": {"2": {"class_type": "Nope", "_meta": {"title": "Mine"}}}}).body["error"]
    assert titled["message"].startswith("Node 'Mine' not found") and titled["extra_info"]["node_title"] == "Mine"
    old = core_of(V0_3_64).submit({"prompt": unknown}).body["error"]
    assert old["type"] == "invalid_prompt" and old["extra_info"] == {}


def test_queue_item_extra_data_per_profile() -> None:
    secrets = {"auth_token_comfy_org": "SECRET-TOKEN", "api_key_comfy_org": "SECRET-KEY", "custom_key": 1}
    new = core_of(V0_33)
    new.submit({"prompt": W_BASIC, "client_id": "c", "extra_data": dict(secrets)})
    extra = new.queue_view()["queue_pending"][0][3]
    assert extra == {"custom_key": 1, "client_id": "c", "create_time": 1_800_000_000_000}
    assert json.loads(new.queue_view_json()) == new.queue_view()
    old = core_of(V0_3_64)
    old.submit({"prompt": W_BASIC, "client_id": "c", "extra_data": dict(secrets)})
    assert old.queue_view()["queue_pending"][0][3] == {**secrets, "client_id": "c"}


def test_output_order_follows_the_recorded_set_order() -> None:
    new, old = core_of(V0_33), core_of(V0_3_64)
    new.submit({"prompt": W_BASIC})
    old.submit({"prompt": W_BASIC})
    assert new.queue_view()["queue_pending"][0][4] == ["4", "3"]
    assert old.queue_view()["queue_pending"][0][4] == ["3", "4"]


def test_feature_flags_per_profile() -> None:
    assert core_of(V0_3_64).server_features() == {"supports_preview_metadata": True, "max_upload_size": 104857600}
    flags = core_of(V0_33).server_features()
    assert list(flags) == [
        "supports_preview_metadata", "supports_model_type_tags", "max_upload_size", "extension", "node_replacements", "assets",
    ]  # fmt: skip
    flags["extension"]["manager"]["supports_v4"] = False  # a caller's change does not reach the profile
    assert core_of(V0_33).server_features()["extension"] == {"manager": {"supports_v4": True}}


# ---------------------------------------------------------------------- over HTTP / WS


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def started(version: str, faults: FaultEngine | None = None) -> FakeComfy:
    server = FakeComfy(FakeConfig(time_scale=0.0, seed=5, comfyui_version=version), faults=faults)
    await server.start()
    return server


@pytest.mark.parametrize(("version", "expected"), [("0.3.64", ("0.3.64", "1.27.10", "posix")), ("0.33", ("0.33.0", "1.48.7", "linux"))])
async def test_system_stats_reports_the_imitated_version(http: aiohttp.ClientSession, version: str, expected: tuple[str, ...]) -> None:
    server = await started(version)
    try:
        async with http.get(server.base_url + "/api/system_stats") as resp:
            system = (await resp.json())["system"]
        assert (system["comfyui_version"], system["required_frontend_version"], system["os"]) == expected
        assert ("comfy_package_versions" in system) == (version == "0.33")
    finally:
        await server.stop()


async def test_jobs_routes_exist_only_in_the_0_33_profile(http: aiohttp.ClientSession) -> None:
    old, new = await started("0.3.64"), await started("0.33")
    try:
        async with http.get(old.base_url + "/api/jobs") as resp:
            assert resp.status == 404 and resp.content_type == "application/octet-stream"
        async with http.get(new.base_url + "/api/jobs") as resp:
            assert resp.status == 200
            assert await resp.json() == {"jobs": [], "pagination": {"offset": 0, "limit": None, "total": 0, "has_more": False}}
        async with http.get(new.base_url + "/api/api/jobs?limit=1") as resp:
            assert resp.status == 200
        async with http.get(new.base_url + "/jobs") as resp:
            assert resp.status == 404
    finally:
        await old.stop()
        await new.stop()


async def test_jobs_lifecycle_list_get_cancel(http: aiohttp.ClientSession) -> None:
    server = await started("0.33")
    server.set_manual_time(True)  # the slow prompt stays running until we let it go
    url = server.base_url
    try:
        async with http.ws_connect(url + "/ws?clientId=jc") as ws:
            await ws.receive()  # status
            ids = []
            for _ in range(3):
                async with http.post(url + "/prompt", json={"prompt": SLOW, "client_id": "jc"}) as resp:
                    ids.append((await resp.json())["prompt_id"])
            running, pending, other = ids
            async with http.get(url + "/api/jobs?status=in_progress,pending") as resp:
                listed = await resp.json()
            assert [(j["id"], j["status"]) for j in listed["jobs"]] == [(other, "pending"), (pending, "pending"), (running, "in_progress")]
            assert listed["pagination"] == {"offset": 0, "limit": None, "total": 3, "has_more": False}
            async with http.get(url + "/api/jobs?limit=1&offset=1&sort_order=asc") as resp:
                page = await resp.json()
            assert [j["id"] for j in page["jobs"]] == [pending] and page["pagination"]["has_more"] is True
            async with http.post(url + f"/api/jobs/{pending}/cancel") as resp:
                assert await resp.json() == {"cancelled": True}
            async with http.get(url + f"/api/jobs/{pending}") as resp:
                assert resp.status == 404 and await resp.json() == {"error": "Job not found"}
            async with http.post(url + "/api/jobs/cancel", json={"job_ids": [running, str(uuid.uuid4())]}) as resp:
                assert await resp.json() == {"cancelled": True}
            server.set_manual_time(False)
            await receive_json_until(ws, finished(running))
            async with http.get(url + f"/api/jobs/{running}") as resp:
                job = await resp.json()
            assert job["status"] == "cancelled" and job["execution_status"]["status_str"] == "error"
            assert list(job)[-3:] == ["outputs", "execution_status", "workflow"]
            assert job["workflow"]["prompt"] == SLOW
            async with http.post(url + f"/api/jobs/{running}/cancel") as resp:
                assert await resp.json() == {"cancelled": False}  # finished: nothing to cancel
            await receive_json_until(ws, finished(other))
            async with http.get(url + "/api/jobs?status=completed") as resp:
                done = (await resp.json())["jobs"]
            assert [j["id"] for j in done] == [other]
            assert done[0]["preview_output"]["nodeId"] == "4" and done[0]["preview_output"]["mediaType"] == "images"
            assert server.ledger.prompts[pending].outcome == "cancelled"
            assert server.ledger.prompts[running].outcome == "interrupted"
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("query", "error"),
    [("status=bogus,pending", "Invalid status value(s): bogus. Valid values: pending, in_progress, completed, failed, cancelled"),
     ("limit=0", "limit must be a positive integer"), ("limit=abc", "limit must be an integer"),
     ("offset=x", "offset must be an integer"), ("sort_by=name", "sort_by must be 'created_at' or 'execution_duration'"),
     ("sort_order=up", "sort_order must be 'asc' or 'desc'")],
)  # fmt: skip
async def test_jobs_list_bad_parameters(http: aiohttp.ClientSession, query: str, error: str) -> None:
    server = await started("0.33")
    try:
        async with http.get(server.base_url + "/api/jobs?" + query) as resp:
            assert resp.status == 400 and await resp.json() == {"error": error}
    finally:
        await server.stop()


async def test_jobs_batch_cancel_bad_bodies(http: aiohttp.ClientSession) -> None:
    server = await started("0.33")
    url = server.base_url + "/api/jobs/cancel"
    try:
        async with http.post(url, json={"job_ids": ["not-a-uuid", 5]}) as resp:
            assert resp.status == 400
            assert await resp.json() == {"error": "job_ids contains invalid id(s)", "invalid_ids": ["not-a-uuid", "5"]}
        async with http.post(url, json={"job_ids": "x"}) as resp:
            assert resp.status == 400 and await resp.json() == {"error": "job_ids must be a list"}
        async with http.post(url, json={"job_ids": []}) as resp:
            assert resp.status == 200 and await resp.json() == {"cancelled": False}
        async with http.post(url, data="not json") as resp:
            assert resp.status == 400 and await resp.json() == {"error": "Request body must be valid JSON"}
        async with http.get(server.base_url + f"/api/jobs/{uuid.uuid4()}/cancel") as resp:
            assert resp.status == 404
    finally:
        await server.stop()


async def test_http_faults_apply_to_jobs_routes(http: aiohttp.ClientSession) -> None:
    spec = FaultSpec.model_validate({"kind": "http_error", "when": {"at": 0}, "count": 2, "params": {"route": "/api/jobs", "status": 503}})
    engine = FaultEngine(FaultSchedule.of([spec]), seed=1, clock=time.monotonic, time_scale=1.0)
    server = await started("0.33", faults=engine)
    try:
        statuses = []
        for path in ("/api/jobs", f"/api/jobs/{uuid.uuid4()}", "/api/jobs"):
            async with http.get(server.base_url + path) as resp:
                statuses.append(resp.status)
        assert statuses == [503, 503, 200]
        assert [r.fault for r in server.ledger.http if r.path.startswith("/api/jobs")] == ["http_error", "http_error", None]
    finally:
        await server.stop()


async def test_cross_site_requests_are_refused_exactly_as_recorded(http: aiohttp.ClientSession) -> None:
    new, old = await started("0.33"), await started("0.3.64")
    try:
        for method, path in (("GET", "/queue"), ("OPTIONS", "/prompt"), ("GET", "/api/jobs")):
            async with http.request(method, new.base_url + path, headers={"Sec-Fetch-Site": "cross-site"}) as resp:
                assert resp.status == 403 and await resp.read() == b""
        async with http.post(new.base_url + "/prompt", json={"prompt": W_BASIC}, headers={"Sec-Fetch-Site": "cross-site"}) as resp:
            assert resp.status == 403
        assert new.core.number == 0  # refused before taking a number
        for value in ("CROSS-SITE", "same-site", "same-origin", "none"):
            async with http.get(new.base_url + "/queue", headers={"Sec-Fetch-Site": value}) as resp:
                assert resp.status == 200, value
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(new.base_url + "/ws?clientId=x", headers={"Sec-Fetch-Site": "cross-site"})
        assert refused.value.status == 403
        async with http.get(old.base_url + "/queue", headers={"Sec-Fetch-Site": "cross-site"}) as resp:
            assert resp.status == 200  # 0.3.64 had no such check
    finally:
        await new.stop()
        await old.stop()


async def test_logs_subscription_pushes_log_lines(http: aiohttp.ClientSession) -> None:
    server = await started("0.33")
    url = server.base_url
    try:
        async with http.ws_connect(url + "/ws?clientId=lg") as ws:
            await ws.receive()
            async with http.patch(url + "/internal/logs/subscribe", json={"clientId": "lg", "enabled": True}) as resp:
                assert resp.status == 200
            async with http.post(url + "/prompt", json={"prompt": W_BASIC, "client_id": "lg"}) as resp:
                pid = (await resp.json())["prompt_id"]
            frames = await receive_json_until(ws, lambda m: m["type"] == "logs" and "Prompt executed" in m["data"]["entries"][0]["m"])
            logs = [m["data"] for m in frames if m["type"] == "logs"]
            assert logs[0]["entries"][0]["m"] == "\x1b[32m[INFO]\x1b[0m got prompt\n" and logs[0]["size"] is None
            assert any(m["type"] == "executing" and m["data"] == {"node": None, "prompt_id": pid} for m in frames)
        async with http.get(url + "/internal/logs/raw") as resp:
            raw = await resp.json()
        assert set(raw) == {"entries", "size"} and raw["entries"][0]["m"].endswith("got prompt\n")
        async with http.get(url + "/internal/logs") as resp:
            assert "got prompt" in await resp.json()
    finally:
        await server.stop()


async def test_serve_cli_takes_the_version_and_rejects_unknown_ones() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "comfy_chaos.fake_comfy.cli", "--port", "0", "--comfyui-version", "0.99",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 3
    assert "unknown ComfyUI version '0.99'" in err.decode() and "Traceback" not in err.decode()


def test_restart_starts_a_new_log_and_forgets_subscribers() -> None:
    core = core_of(V0_33)
    core.subscribe_logs("c", True)
    core.connect(1, "c")
    frames = core.submit({"prompt": W_BASIC, "client_id": "c"}).frames
    assert [f.message_type for f in frames][0] == "logs" and len(core.logs) == 1
    core.reset()
    assert not core.logs and not core.log_subscribers
    core.connect(2, "c")
    frames = core.submit({"prompt": W_BASIC, "client_id": "c"}).frames
    assert [f.message_type for f in frames] == ["status"] and len(core.logs) == 1  # logged, pushed to nobody


async def test_serve_cli_imitates_the_chosen_version(http: aiohttp.ClientSession) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "comfy_chaos.fake_comfy.cli", "--port", "0", "--time-scale", "0", "--comfyui-version", "0.3.64",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = ""
        async with asyncio.timeout(30):
            while "listening on" not in line:
                line = (await proc.stdout.readline()).decode()
                assert line, "serve exited before printing its URL"
        assert line.startswith("fake ComfyUI 0.3.64 listening on http://127.0.0.1:"), line
        url = line.split("listening on ")[1].split()[0]
        async with http.get(url + "/system_stats") as resp:
            assert (await resp.json())["system"]["comfyui_version"] == "0.3.64"
        async with http.get(url + "/api/jobs") as resp:
            assert resp.status == 404
    finally:
        proc.terminate()
        async with asyncio.timeout(30):
            await proc.wait()
