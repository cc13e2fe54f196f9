"""Browser client specs and the frontend cache, without a browser (docs/browser.md)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from comfy_chaos.harness.adapters import AdapterError, load_adapter
from comfy_chaos.harness.adapters.browser import FrontendAdapter, WebPageAdapter
from comfy_chaos.harness.adapters.browser_chromium import BrowserUnavailable, frontend_static

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web"


def test_frontend_specs() -> None:
    follows = load_adapter("frontend")
    assert isinstance(follows, FrontendAdapter) and follows.pinned is None and follows.name == "frontend"
    pinned = load_adapter("frontend@1.27.10")
    assert isinstance(pinned, FrontendAdapter) and pinned.pinned == "1.27.10" and pinned.name == "frontend@1.27.10"
    assert follows.scalable is False and callable(follows.warm_up)


@pytest.mark.parametrize("spec", ["frontend@", "frontend@1.27", "frontend@latest", "frontend@1.2.3;rm"])
def test_a_bad_frontend_version_is_a_usage_error(spec: str) -> None:
    with pytest.raises(AdapterError, match="expected frontend@MAJOR.MINOR.PATCH"):
        load_adapter(spec)


def test_web_specs(tmp_path: Path) -> None:
    page = load_adapter(f"web:{EXAMPLE}")
    assert isinstance(page, WebPageAdapter) and page.scalable is False
    assert isinstance(load_adapter("web:http://127.0.0.1:5173/"), WebPageAdapter)
    with pytest.raises(AdapterError, match="needs a page"):
        load_adapter("web:")
    with pytest.raises(AdapterError, match="does not exist"):
        load_adapter(f"web:{tmp_path / 'missing.html'}")


def test_the_frontend_is_unpacked_from_a_wheel_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMFY_CHAOS_CACHE", str(tmp_path))
    folder = tmp_path / "frontend" / "9.8.7"
    folder.mkdir(parents=True)
    wheel = folder / "comfyui_frontend_package-9.8.7-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("comfyui_frontend_package/__init__.py", "")
        archive.writestr("comfyui_frontend_package/static/index.html", "<title>ComfyUI</title>")
        archive.writestr("comfyui_frontend_package/static/assets/app.js", "1;")
    static = frontend_static("9.8.7")
    assert static == folder / "static"
    assert (static / "index.html").read_text() == "<title>ComfyUI</title>" and (static / "assets" / "app.js").is_file()
    assert not wheel.exists()  # the unpacked folder is what is kept
    assert frontend_static("9.8.7") == static  # second use: from the cache


def test_a_version_that_is_not_one_is_refused_before_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMFY_CHAOS_CACHE", str(tmp_path))
    with pytest.raises(BrowserUnavailable, match="expected MAJOR.MINOR.PATCH"):
        frontend_static("../../etc")
    assert not (tmp_path / "frontend").exists()
