"""The web frontend the fake serves: static files and the routes the page calls at start-up.

ComfyUI serves its web frontend (PyPI `comfyui-frontend-package`, its `static/` folder) at
`/`, and the page calls a handful of routes before it leaves its splash screen: the user
config (`/users`), the settings (`/settings`, `/settings/{id}`), user data (`/userdata…`),
custom-node translations (`/i18n`), workflow templates, model folders. This module answers
them as a fresh ComfyUI does (single-user mode, nothing stored yet), keeping what the page
stores in memory for the server's life.

Everything here is served *outside* the fault and ledger layers: `FrontendRoutes.middleware`
(first in the app's middlewares) hands these requests straight to their handler, so a page
load neither shows up in the ledger's HTTP records nor eats an HTTP fault meant for the API.
The API the page uses to queue and follow prompts (`/prompt`, `/queue`, `/history`, `/ws`,
…) is the fake's own and goes through both layers as for any client.

`FrontendRoutes.static_dir` can be set while the server runs (the browser adapter mounts the
version it needs at warm-up); with none set, `/` is the fake's placeholder page and unknown
paths are the fake's 404s, as before.
"""
from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BYPASS_ATTR = "_comfy_chaos_bypass"
"""Set on a handler: served outside the fault and ledger layers."""

NO_CACHE = {"Cache-Control": "no-cache", "Pragma": "no-cache", "Expires": "0"}


def bypass(handler: Handler) -> Handler:
    """`handler`, marked to be served outside the fault and ledger layers."""

    async def bypassed(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    setattr(bypassed, BYPASS_ATTR, True)
    return bypassed


class FrontendRoutes:
    """Static frontend files plus the in-memory user state of a fresh, single-user ComfyUI."""

    def __init__(self, static_dir: str | Path | None = None) -> None:
        self.static_dir: Path | None = Path(static_dir) if static_dir is not None else None
        self.settings: dict[str, Any] = {}
        self.userdata: dict[str, bytes] = {}  # path relative to the user's folder → content
        self.user_dir_exists = False  # ComfyUI's `user/default/`, created by the first write

    # ---- registration ------------------------------------------------------------------------

    def register(self, app: web.Application) -> None:
        """Add the routes (each with and without the `/api` prefix, as ComfyUI does). Call it
        before any catch-all `/api/{tail}` route, and put `bypass_middleware` first."""
        api: list[tuple[str, str, Handler]] = [
            ("GET", "/users", self._get_users),
            ("POST", "/users", self._post_users),
            ("GET", "/settings", self._get_settings),
            ("POST", "/settings", self._post_settings),
            ("GET", "/settings/{id}", self._get_setting),
            ("POST", "/settings/{id}", self._post_setting),
            ("GET", "/userdata", self._list_userdata),
            ("GET", "/v2/userdata", self._list_userdata_v2),
            ("GET", "/userdata/{file}", self._get_userdata),
            ("POST", "/userdata/{file}", self._post_userdata),
            ("DELETE", "/userdata/{file}", self._delete_userdata),
            ("POST", "/userdata/{file}/move/{dest}", self._move_userdata),
            ("GET", "/i18n", self._empty_object),
            ("GET", "/workflow_templates", self._empty_object),
            ("GET", "/experiment/models", self._empty_list),
            ("GET", "/experiment/models/{folder}", self._empty_list),
        ]
        for method, path, handler in api:
            app.router.add_route(method, path, bypass(handler))
            app.router.add_route(method, "/api" + path, bypass(handler))
        app.router.add_route("GET", "/internal/folder_paths", bypass(self._empty_object))

    # ---- the layer in front of the fault and ledger layers -------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """First in the app's middlewares: the routes above and, while a frontend is mounted,
        `/` and every GET no route matches (the static files) skip the rest of the chain."""
        target = request.match_info.handler
        if getattr(target, BYPASS_ATTR, False):
            return await target(request)
        if self.static_dir is not None and request.method in ("GET", "HEAD"):
            if request.path == "/":
                return web.FileResponse(self.static_dir / "index.html", headers=NO_CACHE)
            unmatched = getattr(request.match_info, "http_exception", None) is not None
            if unmatched and not request.path.startswith("/api/"):
                return self._static(request.path)
        return await handler(request)

    def _static(self, url_path: str) -> web.StreamResponse:
        assert self.static_dir is not None
        root = self.static_dir.resolve()
        path = (root / unquote(url_path).lstrip("/")).resolve()
        if root not in path.parents or not path.is_file():
            return web.Response(status=404, text="404: Not Found")
        content_type, _ = mimetypes.guess_type(path.name)
        if path.suffix in (".js", ".mjs"):
            content_type = "application/javascript"
        headers = {"Content-Type": content_type or "application/octet-stream"}
        return web.FileResponse(path, headers=headers)

    # ---- users and settings --------------------------------------------------------------------

    async def _get_users(self, request: web.Request) -> web.Response:
        # Single-user mode: "migrated" says whether user/default/ exists (a fresh server: no).
        return web.json_response({"storage": "server", "migrated": self.user_dir_exists})

    async def _post_users(self, request: web.Request) -> web.Response:
        return web.json_response({"error": "Duplicate username."}, status=400)

    async def _get_settings(self, request: web.Request) -> web.Response:
        return web.json_response(self.settings)

    async def _get_setting(self, request: web.Request) -> web.Response:
        return web.json_response(self.settings.get(request.match_info["id"]))

    async def _post_settings(self, request: web.Request) -> web.Response:
        body = await request.json()
        if isinstance(body, dict):
            self.settings.update(body)
        self.user_dir_exists = True
        return web.Response(status=200)

    async def _post_setting(self, request: web.Request) -> web.Response:
        self.settings[request.match_info["id"]] = await request.json()
        self.user_dir_exists = True
        return web.Response(status=200)

    # ---- user data ----------------------------------------------------------------------------

    @staticmethod
    def _clean(file: str) -> str | None:
        file = unquote(file).replace("\\", "/")
        parts = [p for p in file.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            return None
        return "/".join(parts)

    async def _list_userdata(self, request: web.Request) -> web.Response:
        directory = request.query.get("dir", "")
        if not directory:
            return web.Response(status=400, text="Directory not provided")
        folder = self._clean(directory)
        if folder is None:
            return web.Response(status=403, text="Invalid directory")
        prefix = folder + "/"
        inside = sorted(p[len(prefix):] for p in self.userdata if p.startswith(prefix))
        if not inside:
            return web.Response(status=404, text="Directory not found")
        recurse = request.query.get("recurse", "").lower() == "true"
        if not recurse:
            inside = [p for p in inside if "/" not in p]
        if request.query.get("full_info", "").lower() == "true":
            body: list[Any] = [
                {"path": p, "size": len(self.userdata[prefix + p]), "modified": 0, "created": 0} for p in inside
            ]
        elif request.query.get("split", "").lower() == "true":
            body = [[p, *p.split("/")] for p in inside]
        else:
            body = list(inside)
        return web.json_response(body)

    async def _list_userdata_v2(self, request: web.Request) -> web.Response:
        return web.json_response([])

    async def _get_userdata(self, request: web.Request) -> web.StreamResponse:
        file = self._clean(request.match_info["file"])
        if file is None:
            return web.Response(status=403)
        if file not in self.userdata:
            return web.Response(status=404)
        content_type = "text/css" if file == "user.css" else (mimetypes.guess_type(file)[0] or "application/octet-stream")
        return web.Response(body=self.userdata[file], headers={"Content-Type": content_type})

    async def _post_userdata(self, request: web.Request) -> web.Response:
        file = self._clean(request.match_info["file"])
        if file is None:
            return web.Response(status=400)
        if request.query.get("overwrite", "true") == "false" and file in self.userdata:
            return web.Response(status=409, text="File already exists")
        self.userdata[file] = await request.read()
        self.user_dir_exists = True
        if request.query.get("full_info", "").lower() == "true":
            return web.json_response({"path": file, "size": len(self.userdata[file]), "modified": 0, "created": 0})
        return web.json_response(file)

    async def _delete_userdata(self, request: web.Request) -> web.Response:
        file = self._clean(request.match_info["file"])
        if file is None or file not in self.userdata:
            return web.Response(status=404)
        del self.userdata[file]
        return web.Response(status=204)

    async def _move_userdata(self, request: web.Request) -> web.Response:
        source, dest = self._clean(request.match_info["file"]), self._clean(request.match_info["dest"])
        if source is None or dest is None:
            return web.Response(status=400)
        if source not in self.userdata:
            return web.Response(status=404)
        if request.query.get("overwrite", "true") == "false" and dest in self.userdata:
            return web.Response(status=409, text="File already exists")
        self.userdata[dest] = self.userdata.pop(source)
        return web.json_response(dest)

    # ---- the rest ------------------------------------------------------------------------------

    async def _empty_object(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _empty_list(self, request: web.Request) -> web.Response:
        return web.json_response([])


__all__ = ["BYPASS_ATTR", "FrontendRoutes", "bypass"]
