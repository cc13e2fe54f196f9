"""Safe-submission decisions: what counts as ambiguous, and when a resend is allowed."""
from __future__ import annotations

import pytest

from comfy_chaos.client.submit import LookupVerdict, PostVerdict, classify_post, lookup_verdict, queue_prompt_ids

PID = "5b9d0a4e-0000-4000-8000-000000000001"
QUEUE_WITH = {"queue_running": [[3, PID, {}, {}, ["3"]]], "queue_pending": []}
QUEUE_PENDING = {"queue_running": [], "queue_pending": [[4, "other", {}, {}, []], [5, PID, {}, {}, []]]}
QUEUE_EMPTY = {"queue_running": [], "queue_pending": []}


@pytest.mark.parametrize(
    "status, body, sent, verdict",
    [
        (200, {"prompt_id": PID, "number": 0, "node_errors": {}}, True, PostVerdict.ACCEPTED),
        (400, {"error": {"type": "no_prompt"}, "node_errors": {}}, True, PostVerdict.REJECTED),
        (403, "", True, PostVerdict.REJECTED),
        (413, "", True, PostVerdict.REJECTED),
        (500, "500 Internal Server Error\n\nServer got itself in trouble", True, PostVerdict.AMBIGUOUS),
        (502, "<html>", True, PostVerdict.AMBIGUOUS),
        (503, "", True, PostVerdict.AMBIGUOUS),
        (429, "", True, PostVerdict.AMBIGUOUS),
        (200, '{"prompt_id": "trunc', True, PostVerdict.AMBIGUOUS),  # truncated body: cannot tell
        (None, None, True, PostVerdict.AMBIGUOUS),  # timeout / reset after sending
        (None, None, False, PostVerdict.NOT_SENT),  # connection refused
    ],
)
def test_classify_post(status, body, sent, verdict):
    assert classify_post(status, body, sent) is verdict


@pytest.mark.parametrize(
    "queue, history, seen, verdict",
    [
        (QUEUE_WITH, {}, False, LookupVerdict.FOUND),
        (QUEUE_PENDING, {}, False, LookupVerdict.FOUND),
        (QUEUE_EMPTY, {PID: {"status": {}}}, False, LookupVerdict.FOUND),
        (None, {PID: {"status": {}}}, False, LookupVerdict.FOUND),
        (QUEUE_EMPTY, {}, False, LookupVerdict.ABSENT),
        (None, {}, False, LookupVerdict.UNKNOWN),
        (QUEUE_EMPTY, None, False, LookupVerdict.UNKNOWN),
        (None, None, False, LookupVerdict.UNKNOWN),
        (None, None, True, LookupVerdict.FOUND),  # a frame about it arrived on the socket
    ],
)
def test_lookup_verdict(queue, history, seen, verdict):
    assert lookup_verdict(queue, history, PID, seen) is verdict


def test_queue_ids_tolerate_odd_shapes():
    assert queue_prompt_ids({"queue_running": [[1, 12345]], "queue_pending": "x"}) == {"12345"}
    assert queue_prompt_ids(None) == set()
    assert queue_prompt_ids({"queue_running": [[1], "bad", None]}) == set()
