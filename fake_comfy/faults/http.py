"""The HTTP side of the fault driver: performs an `HttpPlan` on an aiohttp request.

The planner decided which fault takes the request and how (`decisions.HttpPlan`); this
module only builds and sends the responses, then reports what the client got.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from comfy_chaos.fake_comfy.faults.decisions import ErrorReply, HttpPlan
from comfy_chaos.fake_comfy.jobs import NOT_FOUND

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Called once with what was done (detail) and the body bytes the client got.
Report = Callable[[dict[str, Any], bytes | None], None]

#: Request key where the fault layer names the HTTP fault it applied (copied into the ledger).
FAULT_KEY = web.RequestKey("chaos_fault", str)
COMFY_500_MESSAGE = "Server got itself in trouble"
NGINX_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


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


def _body(response: web.StreamResponse) -> bytes | None:
    body = response.body if isinstance(response, web.Response) else None
    return body if isinstance(body, bytes) else None


async def perform(plan: HttpPlan, request: web.Request, handler: Handler, report: Report) -> web.StreamResponse:
    """Perform one HTTP fault on one request and report it."""
    if plan.after != "hide":
        request[FAULT_KEY] = plan.kind
    if plan.delay:
        report({}, None)
        await asyncio.sleep(plan.delay)
        return await handler(request)
    if plan.reply is not None:
        reply = error_response(plan.reply.status, plan.reply.body)
        report({}, _body(reply))
        return reply
    response = await handler(request)
    if plan.after == "abort":
        report({"status_lost": response.status}, _body(response))
        _abort(request)
        return response
    if plan.after == "truncate":
        return await _truncate(plan, request, response, report)
    if plan.after == "hide":
        return _hide(plan, request, response, report)
    if isinstance(plan.after, ErrorReply):
        return _error_after(plan.after, response, report)
    return response


def _error_after(reply: ErrorReply, response: web.StreamResponse, report: Report) -> web.StreamResponse:
    """The handler ran (a POST /prompt: the prompt is queued); the client gets a 5xx instead."""
    if not 200 <= response.status < 300:
        report({"queued": False, "status_kept": response.status}, None)
        return response
    prompt_id = None
    try:
        answer = json.loads(_body(response) or b"")
        prompt_id = answer.get("prompt_id") if isinstance(answer, dict) else None
    except ValueError:
        pass
    error = error_response(reply.status, reply.body)
    report({"queued": True, "status_replaced": response.status, "prompt_id": prompt_id}, _body(error))
    return error


async def _truncate(plan: HttpPlan, request: web.Request, response: web.StreamResponse, report: Report) -> web.StreamResponse:
    body = _body(response)
    if not body:
        report({"truncated": False, "reason": "no body"}, None)
        return response
    at = plan.truncate_at if plan.truncate_at is not None else len(body) // 2
    at = min(at, len(body) - 1)
    stream = web.StreamResponse(status=response.status, reason=response.reason)
    for name, value in response.headers.items():
        if name.lower() not in ("content-length", "transfer-encoding"):
            stream.headers[name] = value
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[:at])
    report({"at": at, "content_length": len(body)}, body[:at])
    _abort(request)
    return stream


def _hide(plan: HttpPlan, request: web.Request, response: web.StreamResponse, report: Report) -> web.StreamResponse:
    """`history_lag`: prompts completed less than `delay` ago are not in /history yet, nor in
    the Jobs API (an unknown job there is a 404, as ComfyUI answers one)."""
    jobs = "/jobs" in request.path
    if request.path.rstrip("/").split("/")[-1] in plan.hidden:  # /history/<id>, /jobs/<id>
        request[FAULT_KEY] = plan.kind
        hidden = web.json_response(dict(NOT_FOUND), status=404) if jobs else web.json_response({})
        report({"hidden": list(plan.hidden)}, _body(hidden))
        return hidden
    body = _body(response)
    data = json.loads(body) if body else None
    if not isinstance(data, dict):
        return response
    if jobs:
        listed = data.get("jobs")
        if not isinstance(listed, list):
            return response
        gone = [job["id"] for job in listed if isinstance(job, dict) and job.get("id") in plan.hidden]
        if not gone:
            return response
        data["jobs"] = [job for job in listed if not (isinstance(job, dict) and job.get("id") in gone)]
        pagination = data.get("pagination")
        if isinstance(pagination, dict) and isinstance(pagination.get("total"), int):
            pagination["total"] -= len(gone)
    else:
        gone = [pid for pid in plan.hidden if pid in data]
        if not gone:
            return response
        for pid in gone:
            del data[pid]
    request[FAULT_KEY] = plan.kind
    filtered = web.json_response(data)
    report({"hidden": gone}, _body(filtered))
    return filtered
