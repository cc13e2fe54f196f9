"""ComfyUI's Jobs API (0.6+, cancel 0.26+), as the 0.33.0 recording shows it. Plain code, no IO.

A job is a prompt seen from the queue (`pending`, `in_progress`) or from history
(`completed`, `failed`, or `cancelled` for an interrupted run). Job dicts drop None values
(ComfyUI's `prune_dict`); the single-job view adds `outputs`, `execution_status` and
`workflow` for a finished job. Bodies and the 400/404 texts are the recorded ones
(tests/data/comfyui-traces-current/11-jobs.jsonl, 16-jobs-cancel.jsonl).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from comfy_chaos.fake_comfy.core import is_canonical_uuid

if TYPE_CHECKING:
    from comfy_chaos.fake_comfy.core import ComfyCore, QueueItem

STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
FINISHED = ("completed", "failed", "cancelled")
SORT_KEYS = ("created_at", "execution_duration")
#: Output keys whose items are visual media (jobs.py's preview candidates), with their mediaType.
MEDIA_KEYS = {"images": "images", "video": "video", "videos": "video", "gifs": "video", "audio": "audio", "3d": "3d"}
NOT_FOUND = {"error": "Job not found"}


def _prune(entries: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: value for key, value in entries if value is not None}


def _queued(item: QueueItem, status: str) -> dict[str, Any]:
    return _prune(
        [
            ("id", item.prompt_id),
            ("status", status),
            ("priority", item.number),
            ("create_time", item.extra_data.get("create_time")),
            ("outputs_count", 0),
            ("previewable_outputs_count", 0),
            ("workflow_id", _workflow_id(item.extra_data)),
        ]
    )


def _workflow_id(extra_data: Mapping[str, Any]) -> Any:
    pnginfo = extra_data.get("extra_pnginfo")
    workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
    return workflow.get("id") if isinstance(workflow, dict) else None


def _message_time(messages: list[Any], kinds: tuple[str, ...]) -> Any:
    for kind, data in reversed(messages):
        if kind in kinds and isinstance(data, dict):
            return data.get("timestamp")
    return None


def _preview(outputs: dict[str, Any]) -> tuple[int, int, dict[str, Any] | None]:
    """(outputs_count, previewable_outputs_count, preview_output): `type: output` media first."""
    count = previewable = 0
    first_output = first_any = None
    for node_id, ui in outputs.items():
        if not isinstance(ui, dict):
            continue
        for key, items in ui.items():
            if not isinstance(items, list):
                continue
            count += len(items)
            media = MEDIA_KEYS.get(key)
            if media is None:
                continue
            for item in items:
                if not isinstance(item, dict) or "filename" not in item:
                    continue
                previewable += 1
                enriched = {**item, "nodeId": node_id, "mediaType": media}
                if first_any is None:
                    first_any = enriched
                if first_output is None and item.get("type") == "output":
                    first_output = enriched
    return count, previewable, first_output or first_any


def _finished(prompt_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    prompt = entry["prompt"]
    status = entry["status"]
    messages = status.get("messages", [])
    kinds = [kind for kind, _ in messages]
    error = next((data for kind, data in messages if kind == "execution_error"), None)
    if status.get("status_str") == "success":
        state = "completed"
    elif "execution_interrupted" in kinds:
        state = "cancelled"
    else:
        state = "failed"
    count, previewable, preview = _preview(entry.get("outputs", {}))
    return _prune(
        [
            ("id", prompt_id),
            ("status", state),
            ("priority", prompt[0]),
            ("create_time", prompt[3].get("create_time")),
            ("execution_start_time", _message_time(messages, ("execution_start",))),
            ("execution_end_time", _message_time(messages, ("execution_success", "execution_error", "execution_interrupted"))),
            ("execution_error", error),
            ("outputs_count", count),
            ("previewable_outputs_count", previewable),
            ("preview_output", preview),
            ("workflow_id", _workflow_id(prompt[3])),
        ]
    )


def all_jobs(core: ComfyCore, finished: bool = True) -> list[dict[str, Any]]:
    """Every job the server knows: running, pending, then (if `finished`) history; a queued id wins."""
    jobs: dict[str, dict[str, Any]] = {}
    if core.running is not None:
        jobs[core.running.item.prompt_id] = _queued(core.running.item, "in_progress")
    for entry in core.queue:
        jobs.setdefault(entry[3].prompt_id, _queued(entry[3], "pending"))
    if finished:
        for prompt_id, history in core.history.items():
            jobs.setdefault(prompt_id, _finished(prompt_id, history))
    return list(jobs.values())


def list_jobs(core: ComfyCore, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """`GET /api/jobs`: filters `status` (comma list) and `workflow_id`, `sort_by`, `sort_order`, `limit`, `offset`."""
    statuses = None
    if "status" in query:
        statuses = [s.strip() for s in query["status"].split(",") if s.strip()]
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            return 400, {"error": f"Invalid status value(s): {', '.join(bad)}. Valid values: {', '.join(STATUSES)}"}
    sort_by = query.get("sort_by", "created_at")
    if sort_by not in SORT_KEYS:
        return 400, {"error": "sort_by must be 'created_at' or 'execution_duration'"}
    sort_order = query.get("sort_order", "desc")
    if sort_order not in ("asc", "desc"):
        return 400, {"error": "sort_order must be 'asc' or 'desc'"}
    limit = None
    if "limit" in query:
        try:
            limit = int(query["limit"])
        except ValueError:
            return 400, {"error": "limit must be an integer"}
        if limit <= 0:
            return 400, {"error": "limit must be a positive integer"}
    offset = 0
    if "offset" in query:
        try:
            offset = max(0, int(query["offset"]))
        except ValueError:
            return 400, {"error": "offset must be an integer"}
    # a poll for what is still queued (the frontend's, the reference client's) skips the history
    jobs = all_jobs(core, finished=not statuses or any(s in FINISHED for s in statuses))
    if statuses:
        jobs = [job for job in jobs if job["status"] in statuses]
    if "workflow_id" in query:
        jobs = [job for job in jobs if job.get("workflow_id") == query["workflow_id"]]
    if sort_by == "execution_duration":
        jobs.sort(key=_duration, reverse=sort_order == "desc")
    else:
        # ties (same millisecond) go by queue number, as recorded (11-jobs: pending above running)
        jobs.sort(key=lambda job: (job.get("create_time") or 0, job["priority"]), reverse=sort_order == "desc")
    total = len(jobs)
    page = jobs[offset : offset + limit if limit is not None else None]
    pagination = {"offset": offset, "limit": limit, "total": total, "has_more": offset + len(page) < total}
    return 200, {"jobs": page, "pagination": pagination}


def _duration(job: dict[str, Any]) -> int:
    start, end = job.get("execution_start_time"), job.get("execution_end_time")
    return end - start if isinstance(start, int) and isinstance(end, int) else 0


def get_job(core: ComfyCore, job_id: str) -> tuple[int, dict[str, Any]]:
    """`GET /api/jobs/{id}`: the list view, plus outputs, execution_status and workflow once finished."""
    if core.running is not None and core.running.item.prompt_id == job_id:
        return 200, _queued(core.running.item, "in_progress")
    for entry in core.queue:
        if entry[3].prompt_id == job_id:
            return 200, _queued(entry[3], "pending")
    history = core.history.get(job_id)
    if history is None:
        return 404, dict(NOT_FOUND)
    job = _finished(job_id, history)
    job["outputs"] = history.get("outputs", {})
    job["execution_status"] = history["status"]
    job["workflow"] = {"prompt": history["prompt"][2], "extra_data": history["prompt"][3]}
    return 200, job


def batch_ids(body: Any) -> tuple[int, dict[str, Any]] | list[str]:
    """The `job_ids` of a `POST /api/jobs/cancel` body, or the 400 reply for a bad one."""
    ids = body.get("job_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list):
        return 400, {"error": "job_ids must be a list"}
    invalid = [str(i) for i in ids if not is_canonical_uuid(i)]
    if invalid:
        return 400, {"error": "job_ids contains invalid id(s)", "invalid_ids": invalid}
    return [str(i) for i in ids]
