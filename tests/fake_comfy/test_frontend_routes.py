"""The web frontend the fake serves (fake_comfy/frontend.py): start-up routes answered as a
fresh single-user ComfyUI does, static files, and both outside the fault and ledger layers."""
from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
from comfy_chaos.fake_comfy.faults import FaultEngine, FaultSchedule


@pytest.fixture
def static(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>ComfyUI</title><script src='assets/app.js'></script>")
    (tmp_path / "assets" / "app.js").write_text("window.loaded = true;")
    return tmp_path


@pytest.fixture
async def faulty() -> AsyncIterator[FakeComfy]:
    """A server whose every HTTP request (any route) answers 500 while the fault lasts."""
    schedule = FaultSchedule.of([{"kind": "http_error", "when": {"at": 0}, "duration": 60, "params": {"status": 500}}])
    engine = FaultEngine(schedule, seed=1, clock=time.monotonic, time_scale=1.0)
    fake = FakeComfy(FakeConfig(time_scale=0.0, seed=1), faults=engine)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def test_a_fresh_server_has_no_user_folder_until_the_page_stores_settings(
    server: FakeComfy, http: aiohttp.ClientSession
) -> None:
    base = server.base_url
    async with http.get(f"{base}/api/users") as response:
        assert response.status == 200 and await response.json() == {"storage": "server", "migrated": False}
    async with http.get(f"{base}/api/settings") as response:
        assert await response.json() == {}
    async with http.get(f"{base}/api/settings/Comfy.TutorialCompleted") as response:
        assert response.status == 200 and await response.json() is None
    async with http.post(f"{base}/api/settings/Comfy.InstalledVersion", json="1.27.10") as response:
        assert response.status == 200
    async with http.post(f"{base}/settings", json={"Comfy.Locale": "en"}) as response:
        assert response.status == 200
    async with http.get(f"{base}/api/settings") as response:
        assert await response.json() == {"Comfy.InstalledVersion": "1.27.10", "Comfy.Locale": "en"}
    async with http.get(f"{base}/users") as response:
        assert (await response.json())["migrated"] is True


async def test_userdata_lists_404_until_a_file_is_stored(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    base = server.base_url
    listing = f"{base}/api/userdata?dir=workflows&recurse=true&split=false&full_info=true"
    async with http.get(listing) as response:
        assert response.status == 404 and await response.text() == "Directory not found"
    async with http.get(f"{base}/api/userdata/comfy.templates.json") as response:
        assert response.status == 404
    async with http.post(f"{base}/api/userdata/workflows%2Fa.json", data=b'{"nodes": []}') as response:
        assert response.status == 200 and await response.json() == "workflows/a.json"
    async with http.get(listing) as response:
        assert [item["path"] for item in await response.json()] == ["a.json"]
    async with http.get(f"{base}/api/userdata?dir=workflows") as response:
        assert await response.json() == ["a.json"]
    async with http.get(f"{base}/api/userdata/workflows%2Fa.json") as response:
        assert await response.read() == b'{"nodes": []}'
    async with http.get(f"{base}/api/userdata/..%2Fsecret") as response:
        assert response.status == 403
    async with http.get(f"{base}/api/userdata") as response:
        assert response.status == 400


async def test_startup_lookups_answer_empty(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    for path, body in [("/api/i18n", {}), ("/api/workflow_templates", {}), ("/api/experiment/models", []),
                       ("/api/v2/userdata", []), ("/internal/folder_paths", {})]:  # fmt: skip
        async with http.get(server.base_url + path) as response:
            assert response.status == 200 and await response.json() == body, path


async def test_static_files_are_served_only_while_a_frontend_is_mounted(
    server: FakeComfy, http: aiohttp.ClientSession, static: Path
) -> None:
    base = server.base_url
    async with http.get(f"{base}/") as response:
        assert "fake_comfy" in await response.text()  # the placeholder page
    async with http.get(f"{base}/assets/app.js") as response:
        assert response.status == 404
    server.frontend.static_dir = static
    async with http.get(f"{base}/") as response:
        assert "<title>ComfyUI</title>" in await response.text()
    async with http.get(f"{base}/assets/app.js") as response:
        assert response.status == 200 and response.content_type == "application/javascript"
        assert await response.text() == "window.loaded = true;"
    async with http.get(f"{base}/user.css") as response:
        assert response.status == 404
    async with http.get(f"{base}/assets/..%2F..%2Fetc%2Fpasswd") as response:
        assert response.status == 404
    async with http.get(f"{base}/api/nope") as response:
        assert response.status == 404  # the API's own 404, not a static lookup
    async with http.get(f"{base}/queue") as response:
        assert set(await response.json()) >= {"queue_running", "queue_pending"}


async def test_page_loads_are_neither_recorded_nor_faulted(
    faulty: FakeComfy, http: aiohttp.ClientSession, static: Path
) -> None:
    faulty.frontend.static_dir = static
    base = faulty.base_url
    for path in ["/", "/assets/app.js", "/api/users", "/api/settings", "/api/i18n"]:
        async with http.get(base + path) as response:
            assert response.status == 200, path
    assert faulty.ledger.http == []
    async with http.get(f"{base}/api/queue") as response:
        assert response.status == 500  # the API itself is faulted and recorded
    assert [(h.path, h.status, h.fault) for h in faulty.ledger.http] == [("/api/queue", 500, "http_error")]
