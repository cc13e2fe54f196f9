"""`client.jobs.queue_from_jobs`: a jobs list as the client's queue source."""
from __future__ import annotations

import json
from pathlib import Path

from comfy_chaos.client.jobs import queue_from_jobs
from comfy_chaos.client.submit import queue_prompt_ids

TRACE = Path(__file__).resolve().parents[1] / "data" / "comfyui-traces-current" / "11-jobs.jsonl"


def test_recorded_jobs_list_reads_as_the_queue() -> None:
    events = [json.loads(line) for line in TRACE.read_text().splitlines()]
    reply = next(
        e["body"] for e in events
        if e["kind"] == "http-response" and e["path"] == "/api/jobs?status=in_progress,pending" and e["body"]["jobs"]
    )  # fmt: skip
    queue = queue_from_jobs(reply)
    assert queue == {
        "queue_running": [[85, "683c860e-07b5-41ff-85cd-8c01cf7dd525"]],
        "queue_pending": [[86, "12c7c325-b304-4156-a790-71da0355af7b"]],
    }
    assert queue_prompt_ids(queue) == {"683c860e-07b5-41ff-85cd-8c01cf7dd525", "12c7c325-b304-4156-a790-71da0355af7b"}


def test_finished_jobs_are_not_queued_and_odd_replies_are_refused() -> None:
    done = {"jobs": [{"id": "a", "status": "completed"}, {"id": "b", "status": "cancelled"}], "pagination": {"has_more": False}}
    assert queue_from_jobs(done) == {"queue_running": [], "queue_pending": []}
    assert queue_from_jobs({"jobs": [], "pagination": {"has_more": True}}) is None  # partial: proves nothing
    for odd in (None, [], {"error": "x"}, {"jobs": "x"}, {"jobs": [{"status": "pending"}]}, {"jobs": [5]}):
        assert queue_from_jobs(odd) is None, odd
