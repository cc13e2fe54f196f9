"""Reading ComfyUI's Jobs API (0.6+) as the client's queue source (pure).

`GET /api/jobs?status=in_progress,pending` says which prompts are still queued or running,
like `GET /queue`, without shipping every queued graph back: the current web frontend
polls it instead of /queue. Outcomes still come from `/history/{id}`, which every version
writes and from which the Jobs API itself is built. A server without the Jobs API (0.3.64:
404) is remembered and asked `/queue` from then on.
"""
from __future__ import annotations

from typing import Any

JOBS_QUEUE_PATH = "/api/jobs?status=in_progress,pending"


def queue_from_jobs(reply: Any) -> dict[str, Any] | None:
    """A `/queue`-shaped dict (`[number, prompt_id]` items) from a jobs list reply; None if
    the reply is not one (then the caller asks `/queue`)."""
    if not isinstance(reply, dict) or not isinstance(reply.get("jobs"), list):
        return None
    pagination = reply.get("pagination")
    if isinstance(pagination, dict) and pagination.get("has_more") is True:
        return None  # a partial list cannot prove a prompt is gone
    running: list[list[Any]] = []
    pending: list[list[Any]] = []
    for job in reply["jobs"]:
        if not isinstance(job, dict) or not isinstance(job.get("id"), str):
            return None
        item = [job.get("priority"), job["id"]]
        if job.get("status") == "in_progress":
            running.append(item)
        elif job.get("status") == "pending":
            pending.append(item)
    return {"queue_running": running, "queue_pending": pending}
