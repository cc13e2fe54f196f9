"""Decisions for safe submission (pure).

ComfyUI runs a re-used prompt_id a second time, so a `POST /prompt` that failed
ambiguously (timeout, connection reset after sending, 5xx, unreadable reply) must not
simply be sent again: first look the id up in `/queue` and `/history/{id}`.
"""
from __future__ import annotations

from enum import Enum
from typing import Any


class PostVerdict(Enum):
    ACCEPTED = "accepted"  # 200 with a JSON body
    REJECTED = "rejected"  # 400: the server validated and refused it
    NOT_SENT = "not_sent"  # connection never established: nothing reached the server
    AMBIGUOUS = "ambiguous"  # the server may or may not have queued it


def classify_post(status: int | None, body: Any, sent: bool) -> PostVerdict:
    """Classify one `POST /prompt` attempt.

    `status` is None when no HTTP reply was read; `sent` is False only when the TCP
    connection could not be opened at all.
    """
    if status is None:
        return PostVerdict.AMBIGUOUS if sent else PostVerdict.NOT_SENT
    if status == 200:
        return PostVerdict.ACCEPTED if isinstance(body, dict) else PostVerdict.AMBIGUOUS
    if status == 400:
        return PostVerdict.REJECTED
    if 400 < status < 500 and status not in (408, 429):
        # a client error other than validation (403 origin, 413 too large): not queued
        return PostVerdict.REJECTED
    return PostVerdict.AMBIGUOUS


class LookupVerdict(Enum):
    FOUND = "found"  # queued or already in history: do not send again
    ABSENT = "absent"  # both answered and neither knows it: safe to send again
    UNKNOWN = "unknown"  # could not ask: keep looking, never resend blindly


def lookup_verdict(
    queue: dict[str, Any] | None, history: dict[str, Any] | None, prompt_id: str, seen_on_ws: bool = False
) -> LookupVerdict:
    """Decide from a `/queue` reply and a `/history/{id}` reply (None = request failed)."""
    if seen_on_ws:
        return LookupVerdict.FOUND
    if history is not None and prompt_id in history:
        return LookupVerdict.FOUND
    if queue is not None and prompt_id in queue_prompt_ids(queue):
        return LookupVerdict.FOUND
    if queue is None or history is None:
        return LookupVerdict.UNKNOWN
    return LookupVerdict.ABSENT


def queue_prompt_ids(queue: Any) -> set[str]:
    """Prompt ids in a `GET /queue` reply (running and pending); tolerant of odd shapes."""
    ids: set[str] = set()
    if not isinstance(queue, dict):
        return ids
    for key in ("queue_running", "queue_pending"):
        items = queue.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, (list, tuple)) and len(item) > 1 and isinstance(item[1], (str, int)):
                ids.add(str(item[1]))
    return ids
