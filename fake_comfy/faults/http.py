"""HTTP faults: performed in the aiohttp middleware path of `FaultEngine.on_http`."""
from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import structlog
from aiohttp import web

if TYPE_CHECKING:
    from comfy_chaos.fake_comfy.faults.engine import FaultEngine, _State

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COMFY_500_MESSAGE = "Server got itself in trouble"
NGINX_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def normalize_path(path: str) -> str:
    """`/api/x` and `/x` are the same route in ComfyUI."""
    if path == "/api" or path.startswith("/api/"):
        path = path[4:] or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/")
    return path


def route_matches(kind: str, params: Any, method: str, path: str) -> bool:
    """Does a request (normalised path) fall under this HTTP fault?"""
    if kind == "prompt_response_lost":
        return method == "POST" and path == "/prompt"
    if params.method is not None and params.method != method:
        return False
    if params.route is None:
        return path != "/ws"
    route = normalize_path(params.route)
    return path == route or path.startswith(route.rstrip("/") + "/")


def error_response(status: int, body: str) -> web.Response:
    """A 5xx like aiohttp's unhandled-exception reply (comfy), an nginx page (html) or empty."""
    try:
        reason_text = HTTPStatus(status).phrase
    except ValueError:
        reason_text = "Server Error"
    if body == "comfy":
        return web.Response(
            status=status,
            text=f"{status} {reason_text}\n\n{COMFY_500_MESSAGE}",
            content_type="text/plain",
            charset="utf-8",
            headers={"Connection": "close"},
        )
    if body == "html":
        return web.Response(
            status=status,
            text=NGINX_PAGE.format(status=status, reason=reason_text),
            content_type="text/html",
            headers={"Server": "nginx"},
        )
    return web.Response(status=status)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def apply(engine: FaultEngine, state: _State, request: web.Request, handler: Handler) -> Any:
    """Perform one HTTP fault on one request and record it."""
    params = state.spec.parsed_params
    now = engine.clock()
    target = {"method": request.method, "path": request.path}
    kind = state.kind
    if kind == "http_error":
        response = error_response(params.status, params.body)
        engine.record_http(now, state, target, {"status": params.status, "body": params.body},
                            response.body if isinstance(response.body, bytes) else None)
        return response
    if kind == "http_slow":
        delay = params.delay * engine.time_scale
        engine.record_http(now, state, target, {"delay": delay}, None)
        await asyncio.sleep(delay)
        return await handler(request)
    if kind == "prompt_response_lost":
        response = await handler(request)
        body = response.body if isinstance(response, web.Response) else None
        engine.record_http(now, state, target, {"status_lost": response.status},
                            body if isinstance(body, bytes) else None)
        _abort(request)
        return response
    if kind == "http_truncate":
        response = await handler(request)
        body = response.body if isinstance(response, web.Response) else None
        if not isinstance(body, bytes) or not body:
            engine.record_http(now, state, target, {"truncated": False, "reason": "no body"}, None)
            return response
        at = params.at if params.at is not None else len(body) // 2
        at = min(at, len(body) - 1)
        stream = web.StreamResponse(status=response.status, reason=response.reason)
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding"):
                stream.headers[name] = value
        stream.content_length = len(body)
        await stream.prepare(request)
        await stream.write(body[:at])
        engine.record_http(now, state, target, {"at": at, "content_length": len(body)}, body[:at])
        _abort(request)
        return stream
    raise AssertionError(f"not an HTTP fault: {kind}")


async def hide_lagged(engine: FaultEngine, request: web.Request, handler: Handler, path: str) -> Any:
    """`history_lag`: prompts completed less than `delay` ago are not in /history yet."""
    lagging = engine.lagging_prompts(engine.clock())
    if not lagging:
        return await handler(request)
    target = {"method": request.method, "path": request.path}
    if path.startswith("/history/"):
        prompt_id = path.removeprefix("/history/")
        if prompt_id not in lagging:
            return await handler(request)
        response = web.json_response({})
        engine.record_http(engine.clock(), engine.state(lagging[prompt_id]), target,
                            {"hidden": [prompt_id]}, response.body)
        return response
    response = await handler(request)
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes):
        return response
    data = json.loads(body)
    hidden = [pid for pid in lagging if pid in data]
    if not hidden:
        return response
    for pid in hidden:
        del data[pid]
    filtered = web.json_response(data)
    engine.record_http(engine.clock(), engine.state(lagging[hidden[0]]), target,
                        {"hidden": hidden}, filtered.body)
    return filtered
