"""The sans-IO tracker: completion, reconcile, polling, probe, hints, final check, exactly-once."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_chaos.client.config import ClientConfig
from comfy_chaos.client.sanitize import Message
from comfy_chaos.client.tracker import FetchHistory, FetchQueue, ForceReconnect, Phase, Progress, Report, Tracker

REF = ClientConfig.reference()
SEED = ClientConfig.seed()
P1, P2 = "p-1", "p-2"


def entry(kind: str = "execution_success", outputs: dict | None = None, payload: dict | None = None) -> dict:
    payload = payload or {"prompt_id": P1}
    return {
        "outputs": outputs or {},
        "status": {
            "status_str": "success" if kind == "execution_success" else "error",
            "completed": kind == "execution_success",
            "messages": [["execution_start", {}], [kind, payload]],
        },
    }


OUT = {"3": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}}


def m(kind: str, **data) -> Message:
    return Message(kind, data)


def start(cfg=REF, pids=(P1,), now=0.0, connected=True) -> Tracker:
    tr = Tracker(cfg)
    if connected:
        tr.on_connected(now)
        tr.on_message(m("status", status={"exec_info": {"queue_remaining": 0}}, sid="c"), now)  # greeting
    for pid in pids:
        tr.add(pid, now)
        tr.accepted(pid, now)
    return tr


def only(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def test_success_over_the_socket_reports_once_with_history_outputs():
    tr = start()
    task = tr.tasks[P1]
    assert only(tr.on_message(m("execution_start", prompt_id=P1), 1.0), Progress)
    tr.on_message(m("executing", node="3", display_node="3", prompt_id=P1), 1.1)
    tr.on_message(m("executed", node="3", output=OUT["3"], prompt_id=P1), 1.2)
    assert tr.on_message(m("execution_success", prompt_id=P1), 1.3) == []
    acts = tr.on_message(m("executing", node=None, prompt_id=P1), 1.31)
    assert acts == [FetchHistory(P1, "ws")]
    reports = only(tr.on_history(P1, {P1: entry(outputs=OUT)}, True, 1.4), Report)
    assert len(reports) == 1 and reports[0].outcome.status == "success" and reports[0].outcome.outputs == OUT
    # duplicates and late answers change nothing
    assert tr.on_message(m("executing", node=None, prompt_id=P1), 1.5) == []
    assert tr.on_history(P1, {P1: entry(outputs=OUT)}, True, 1.6) == []
    assert P1 not in tr.tasks and task.phase is Phase.DONE  # finished tasks are forgotten


def test_lost_finish_frame_falls_back_after_success_grace():
    tr = start()
    tr.on_message(m("execution_success", prompt_id=P1), 1.0)
    assert tr.tick(1.0 + REF.success_grace / 2) == []
    assert tr.next_wakeup(1.0) == 1.0 + REF.success_grace
    assert tr.tick(1.0 + REF.success_grace) == [FetchHistory(P1, "ws")]


def test_empty_history_is_not_yet_and_is_retried_on_schedule():
    tr = start()
    tr.on_message(m("executing", node=None, prompt_id=P1), 1.0)
    now = 1.0
    for delay in REF.history_retry_delays:
        assert only(tr.on_history(P1, {}, True, now), Report) == []
        assert tr.tick(now + delay * 0.99) == []
        assert tr.tick(now + delay) == [FetchHistory(P1, "ws")]
        now += delay
    tr.on_history(P1, {}, True, now)  # after the listed delays, retry every poll interval
    assert tr.tick(now + REF.poll_interval) == [FetchHistory(P1, "ws")]
    assert only(tr.on_history(P1, {P1: entry()}, True, now + 4), Report)


def test_failed_history_request_is_retried_too():
    tr = start()
    tr.on_message(m("executing", node=None, prompt_id=P1), 1.0)
    assert tr.on_history(P1, None, False, 1.1) == []
    assert tr.tick(1.1 + REF.history_retry_delays[0]) == [FetchHistory(P1, "ws")]


def test_error_frame_then_history_carries_payload_and_outputs():
    tr = start()
    err = {"prompt_id": P1, "node_id": "3", "node_type": "SaveImage", "exception_message": "boom"}
    tr.on_message(m("execution_error", **err), 1.0)
    acts = tr.on_message(m("executing", node=None, prompt_id=P1), 1.01)
    assert acts == [FetchHistory(P1, "ws")]
    (rep,) = only(tr.on_history(P1, {P1: entry("execution_error", OUT, err)}, True, 1.1), Report)
    assert rep.outcome.status == "error" and rep.outcome.error == err and rep.outcome.outputs == OUT


def test_seed_settles_an_error_from_the_frame_alone():
    tr = start(SEED)
    err = {"prompt_id": P1, "node_type": "X", "exception_message": "boom"}
    (rep,) = only(tr.on_message(m("execution_error", **err), 1.0), Report)
    assert rep.outcome.status == "error" and rep.outcome.error == err


def test_seed_takes_an_empty_history_as_done_with_socket_outputs():
    tr = start(SEED)
    tr.on_message(m("executed", node="3", output=OUT["3"], prompt_id=P1), 1.0)
    tr.on_message(m("executing", node=None, prompt_id=P1), 1.1)
    (rep,) = only(tr.on_history(P1, {}, True, 1.2), Report)
    assert rep.outcome.status == "success" and rep.outcome.outputs == OUT


def test_reconcile_on_reconnect_asks_queue_then_history_of_missing_tasks():
    tr = start(pids=(P1, P2))
    tr.on_disconnected(2.0)
    acts = tr.on_connected(3.0)
    assert acts == [FetchQueue("reconcile")]
    queue = {"queue_running": [[1, P2, {}, {}, []]], "queue_pending": []}
    assert tr.on_queue(queue, True, 3.1) == [FetchHistory(P1, "reconcile")]
    (rep,) = only(tr.on_history(P1, {P1: entry(outputs=OUT)}, True, 3.2), Report)
    assert rep.outcome.source == "reconcile"
    assert tr.on_history(P2, {}, True, 3.3) == []


def test_seed_does_not_reconcile():
    tr = start(SEED)
    tr.on_disconnected(2.0)
    assert tr.on_connected(3.0) == []


def test_reconcile_waits_for_a_fresh_queue_answer_when_one_is_in_flight():
    tr = start()
    tr.on_disconnected(1.0)
    assert tr.tick(1.0 + REF.poll_interval) == [FetchQueue("poll")]
    assert tr.on_connected(5.0) == []  # a poll's /queue is in flight: its snapshot predates the reconnect
    acts = tr.on_queue({"queue_running": [[1, P1, {}, {}, []]], "queue_pending": []}, True, 5.1)
    assert acts == [FetchQueue("reconcile")]


def test_polling_only_while_the_socket_is_down():
    tr = start()
    assert only(tr.tick(100.0), FetchQueue) == [FetchQueue("probe")]  # connected: a probe, not a poll
    tr2 = start(connected=False)
    assert tr2.tick(0.0) == []
    assert tr2.tick(REF.poll_interval) == [FetchQueue("poll")]
    tr2.on_queue({"queue_running": [], "queue_pending": []}, True, REF.poll_interval)
    (rep,) = only(tr2.on_history(P1, {P1: entry()}, True, 3.2), Report)
    assert rep.outcome.source == "poll"


def test_seed_polls_history_per_task_and_needs_completed():
    tr = start(SEED, pids=(P1, P2), connected=False)
    assert tr.tick(0.0) == []
    assert sorted(tr.tick(SEED.poll_interval), key=str) == [FetchHistory(P1, "poll"), FetchHistory(P2, "poll")]
    assert tr.on_history(P1, {P1: entry("execution_error")}, True, 3.1) == []  # seed ignores errors here
    assert only(tr.on_history(P2, {P2: entry()}, True, 3.1), Report)


def test_probe_when_quiet_and_unannounced_completion_forces_reconnect():
    tr = start()
    tr.on_message(m("execution_start", prompt_id=P1), 1.0)
    assert tr.tick(1.0 + REF.probe_quiet * 0.9) == []
    assert tr.tick(1.0 + REF.probe_quiet) == [FetchQueue("probe")]
    assert tr.on_queue({"queue_running": [], "queue_pending": []}, True, 6.1) == [FetchHistory(P1, "probe")]
    acts = tr.on_history(P1, {P1: entry()}, True, 6.2)
    assert [type(a) for a in acts] == [Report, ForceReconnect]
    assert tr.stats.unresponsive == 1


def test_no_probe_without_pending_tasks_and_no_silence_reconnect_in_reference():
    tr = start(pids=())
    assert tr.tick(10_000.0) == []


def test_no_greeting_after_connect_means_a_deaf_socket():
    tr = Tracker(REF)
    tr.on_connected(0.0)
    assert tr.next_wakeup(0.0) == REF.echo_timeout
    assert tr.tick(REF.echo_timeout * 0.99) == []
    assert tr.tick(REF.echo_timeout) == [ForceReconnect("health.no_echo")]
    assert tr.tick(REF.echo_timeout * 10) == []  # once per connection


def test_no_status_echo_after_submit_means_a_deaf_socket():
    tr = start(pids=())
    tr.add(P1, 100.0)
    tr.accepted(P1, 100.1)
    assert ForceReconnect("health.no_echo") in tr.tick(100.1 + REF.echo_timeout)
    tr2 = start(pids=())
    tr2.add(P1, 100.0)
    tr2.accepted(P1, 100.1)
    tr2.on_message(m("status", status={"exec_info": {"queue_remaining": 1}}), 100.2)
    assert only(tr2.tick(100.1 + REF.echo_timeout), ForceReconnect) == []


def test_repeatedly_deaf_connections_are_given_longer_each_time():
    tr = Tracker(REF)
    now, waits = 0.0, []
    for _ in range(4):
        tr.on_connected(now)
        due = tr.next_wakeup(now)
        waits.append(due - now)
        assert ForceReconnect("health.no_echo") in tr.tick(due)
        tr.on_disconnected(due)
        now = due + 0.1
    assert waits == pytest.approx([REF.echo_timeout * 2**i for i in range(4)])
    tr.on_connected(now)
    tr.on_message(m("status", status={}), now + 0.1)  # a greeting resets the count
    tr.on_disconnected(now + 1)
    tr.on_connected(now + 2)
    assert tr.next_wakeup(now + 2) == now + 2 + REF.echo_timeout


def test_vanished_task_is_checked_less_and_less_often():
    tr = start()
    absent = {"queue_running": [], "queue_pending": []}
    checks, probes = [], 0
    now = 0.0
    while now < 100:
        now += REF.probe_interval
        for action in tr.tick(now):
            if isinstance(action, FetchQueue):
                probes += 1
                for follow in tr.on_queue(absent, True, now):
                    assert follow == FetchHistory(P1, "probe")
                    checks.append(now)
                    tr.on_history(P1, {}, True, now)
    gaps = [b - a for a, b in zip(checks, checks[1:])]
    assert gaps == sorted(gaps) and gaps[-1] >= REF.reconnect_cap, gaps
    assert len(checks) < 100 / REF.probe_interval / 2
    assert probes == len(checks)  # no /queue probe while the only waiting task is backed off


def test_timeouts_have_an_unscaled_floor():
    cfg = REF.scaled(0.02)
    assert cfg.http_timeout == 0.2 and cfg.request_timeout == cfg.timeout_floor == 1.0
    assert cfg.heartbeat == 1.0 and cfg.ws_connect_timeout == 1.0
    assert REF.request_timeout == REF.http_timeout == 10.0
    assert SEED.heartbeat is None


def test_seed_has_no_echo_watchdog():
    tr = Tracker(SEED)
    tr.on_connected(0.0)
    assert tr.tick(5.0) == []


def test_seed_silence_check_reconnects_an_idle_socket():
    tr = Tracker(SEED)
    tr.on_connected(0.0)
    assert tr.tick(0.0) == []
    assert tr.tick(SEED.silence_check_interval) == []
    assert tr.tick(2 * SEED.silence_check_interval) == []
    assert tr.tick(3 * SEED.silence_check_interval) == []  # 30 s: not yet "more than 30 s"
    assert tr.tick(4 * SEED.silence_check_interval) == [ForceReconnect("health.silence")]


def test_hint_status_queue_shrank_below_outstanding():
    tr = start(pids=(P1, P2))
    status = lambda q: m("status", status={"exec_info": {"queue_remaining": q}})  # noqa: E731
    assert tr.on_message(status(2), 1.0) == []
    assert tr.on_message(status(1), 1.1) == [FetchQueue("hint")]


def test_hint_next_prompt_started_while_previous_unfinished():
    tr = start(pids=(P1, P2))
    tr.on_message(m("execution_start", prompt_id=P1), 1.0)
    acts = tr.on_message(m("execution_start", prompt_id=P2), 2.0)
    assert FetchHistory(P1, "hint") in acts


def test_hint_finish_frame_without_prompt_id():
    tr = start()
    tr.on_message(m("execution_start", prompt_id=P1), 1.0)
    assert tr.on_message(m("executing", node=None), 2.0) == [FetchHistory(P1, "hint")]


def test_reconnect_replay_without_prompt_id_is_progress_only():
    tr = start()
    tr.on_message(m("executing", node="2", prompt_id=P1), 1.0)
    (act,) = tr.on_message(m("executing", node="2"), 2.0)
    assert isinstance(act, Progress) and act.event.node == "2"


def test_frames_before_post_reply_are_kept():
    tr = Tracker(REF)
    tr.on_connected(0.0)
    tr.add(P1, 0.0)
    tr.on_message(m("execution_start", prompt_id=P1), 0.1)
    tr.on_message(m("executing", node=None, prompt_id=P1), 0.2)
    assert tr.accepted(P1, 0.3) == [FetchHistory(P1, "ws")]


def test_final_check_before_unknown():
    tr = start()
    deadline = REF.task_deadline
    assert tr.tick(deadline) == [FetchHistory(P1, "final_check")]
    assert tr.on_history(P1, {}, True, deadline + 0.1) == [FetchQueue("final_check")]
    (rep,) = tr.on_queue({"queue_running": [[1, P1, {}, {}, []]], "queue_pending": []}, True, deadline + 0.2)
    assert rep.outcome.status == "unknown" and "still queued or running" in rep.outcome.detail


def test_final_check_finds_the_result():
    tr = start()
    tr.tick(REF.task_deadline)
    (rep,) = only(tr.on_history(P1, {P1: entry(outputs=OUT)}, True, REF.task_deadline + 0.1), Report)
    assert rep.outcome.status == "success" and rep.outcome.source == "final_check"


def test_final_check_without_answers_ends_at_its_own_bound():
    tr = start()
    tr.tick(REF.task_deadline)
    bound = tr.next_wakeup(REF.task_deadline)
    assert bound > REF.task_deadline
    (rep,) = only(tr.tick(bound), Report)
    assert rep.outcome.status == "unknown"


# ---- exactly-once under any interleaving -------------------------------------------------

signals = st.lists(
    st.one_of(
        st.tuples(st.just("msg"), st.sampled_from(
            ["execution_start", "execution_success", "executing_null", "execution_error", "status0", "null_no_id"])),
        st.tuples(st.just("history"), st.sampled_from(["found", "empty", "fail", "error_entry"])),
        st.tuples(st.just("queue"), st.sampled_from(["with", "without", "fail"])),
        st.tuples(st.just("conn"), st.sampled_from(["up", "down"])),
        st.tuples(st.just("tick"), st.floats(0, 50)),
    ),
    max_size=40,
)


@given(signals, st.sampled_from([REF.scaled(0.01), SEED.scaled(0.01)]))
@settings(max_examples=300, deadline=None)
def test_every_task_reported_exactly_once_whatever_happens(events, cfg):
    tr = start(cfg, pids=(P1, P2))
    now = 0.0
    reports: list[Report] = []

    def feed(actions):
        reports.extend(only(actions, Report))

    for kind, arg in events:
        now += 0.01
        if kind == "msg":
            for pid in (P1, P2):
                if arg == "status0":
                    feed(tr.on_message(m("status", status={"exec_info": {"queue_remaining": 0}}), now))
                elif arg == "executing_null":
                    feed(tr.on_message(m("executing", node=None, prompt_id=pid), now))
                elif arg == "null_no_id":
                    feed(tr.on_message(m("executing", node=None), now))
                else:
                    feed(tr.on_message(m(arg, prompt_id=pid), now))
        elif kind == "history":
            for pid in (P1, P2):
                replies = {"found": {pid: entry()}, "empty": {}, "fail": None,
                           "error_entry": {pid: entry("execution_error")}}
                reply = replies[arg]
                feed(tr.on_history(pid, reply, arg != "fail", now))
        elif kind == "queue":
            q = {"queue_running": [[1, P1, {}, {}, []], [2, P2, {}, {}, []]], "queue_pending": []}
            feed(tr.on_queue(q if arg == "with" else {"queue_running": [], "queue_pending": []}, arg != "fail", now))
        elif kind == "conn":
            feed(tr.on_connected(now) if arg == "up" else tr.on_disconnected(now))
        else:
            now += arg
            feed(tr.tick(now))
    # drive time past every deadline and bound: each task must end exactly once
    for _ in range(4):
        now = max(now, tr.next_wakeup(now) or now) + cfg.task_deadline + 10 * cfg.http_timeout
        feed(tr.tick(now))
    counts = {pid: sum(1 for r in reports if r.prompt_id == pid) for pid in (P1, P2)}
    assert counts == {P1: 1, P2: 1}, (counts, events)


def test_final_check_can_use_a_queue_answer_already_in_flight():
    """Absent from an earlier /queue snapshot and from a later /history: gone for good."""
    tr = start(pids=(P1,))
    tr.add(P2, 50.0, deadline_s=1.0)
    tr.accepted(P2, 50.0)
    tr.on_message(m("status", status={}), 50.0)
    assert FetchHistory(P2, "final_check") in tr.tick(51.0)
    assert tr.tick(50.0 + REF.probe_quiet + 1) == [FetchQueue("probe")]
    assert tr.on_history(P2, {}, True, 56.1) == []  # its /queue stage joins the probe's request
    empty = {"queue_running": [], "queue_pending": []}
    acts = tr.on_queue(empty, True, 56.2)
    assert FetchHistory(P1, "probe") in acts
    (rep,) = only(acts, Report)
    assert rep.prompt_id == P2 and rep.outcome.status == "unknown" and "not in /queue" in rep.outcome.detail


def _finished_over_the_socket(tr: Tracker) -> None:
    tr.on_message(m("execution_start", prompt_id=P1), 1.0)
    tr.on_message(m("executed", node="3", output=OUT["3"], prompt_id=P1), 1.2)
    tr.on_message(m("execution_success", prompt_id=P1), 1.3)
    assert tr.on_message(m("executing", node=None, prompt_id=P1), 1.31) == [FetchHistory(P1, "ws")]


def test_history_lost_in_a_restart_is_reported_from_the_socket_at_once():
    """`executing` null follows the history write (§8), so an empty history for that task
    after a reconnect, with the task no longer queued, means the server lost it (a restart):
    report what the socket said now instead of waiting for the deadline's final check."""
    tr = start()
    _finished_over_the_socket(tr)
    tr.on_disconnected(1.35)  # the server restarts before the history answer
    assert not only(tr.on_history(P1, None, False, 1.4), Report)
    assert tr.on_connected(2.0) == [FetchQueue("reconcile")]
    assert tr.on_queue({"queue_running": [], "queue_pending": []}, True, 2.1) == [FetchHistory(P1, "reconcile")]
    reports = only(tr.on_history(P1, {}, True, 2.2), Report)
    assert len(reports) == 1 and reports[0].outcome.status == "success"
    assert reports[0].outcome.outputs == OUT and reports[0].outcome.source == "ws"


def test_empty_history_without_a_reconnect_is_still_only_not_yet():
    tr = start()
    _finished_over_the_socket(tr)
    assert not only(tr.on_history(P1, {}, True, 1.4), Report)  # history lag: retried, not settled
    assert tr.tasks[P1].history_due is not None
