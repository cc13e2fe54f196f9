"""Conformance: replay every recorded ComfyUI situation against the fake and compare.

Both recording sets run, each against its protocol profile: tests/data/comfyui-traces/
(ComfyUI 0.3.64) against `comfyui_version="0.3.64"`, tests/data/comfyui-traces-current/
(0.33.0) against `"0.33"`.

Per WebSocket connection: the same message types in the same order, with the same keys,
value types and node ids (`tracereplay.shape`). Two normalisations, both documented in
docs/fake_comfy.md: runs of identical progress ticks are collapsed (how many ticks pass
before an interrupt lands depends on timing), and `status` broadcasts are compared as
their own ordered sequence (the real server sends them from the HTTP handler thread, so
where they fall among the worker's frames is a race). HTTP: status code, Content-Type and
body shape of every response. Every difference kept on purpose is in ALLOWED below.
"""
from __future__ import annotations

import difflib
import json
import re
from typing import Any

import aiohttp
import pytest

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig

from .tracereplay import TRACE_SETS, HttpExchange, Replayer, collapse_runs, load

#: Deliberate differences, by (file, method, path prefix): what the fake answers instead,
#: as (status, content_type) — reasons in docs/fake_comfy.md.
ALLOWED_HTTP: dict[tuple[str, str, str], tuple[int, str | None]] = {
    # ComfyUI crashes into aiohttp's 500 text page; the fake gives a clear 400 JSON error.
    ("04-validation.jsonl", "POST", "/prompt"): (400, "application/json"),
    ("09-misc.jsonl", "POST", "/prompt"): (400, "application/json"),
    ("09-misc.jsonl", "POST", "/queue"): (400, "application/json"),
    ("09c-misc-uuid.jsonl", "POST", "/prompt"): (400, "application/json"),
    ("09c-misc-uuid.jsonl", "POST", "/queue"): (400, "application/json"),
    # No Pillow: `preview=` is ignored and the PNG is served as is.
    ("02-success.jsonl", "GET", "/view?filename=basic_00001_.png&subfolder=trace02&type=output&preview"): (200, "image/png"),
}
#: Responses whose body is compared only by status (content differs on purpose).
#: `/system_stats` values are fake, but its keys and the imitated versions are compared
#: (`_system_stats_problems`).
BODY_NOT_COMPARED = ("/extensions", "/system_stats", "/object_info", "/")
#: Responses whose entries come from the recording server's earlier files (one process
#: served all traces): only the number of entries is compared.
BODY_COUNT_ONLY = ("/history?max_items=2&offset=1",)
#: Client events the real server acted on later than they were sent: event index → index of
#: the recorded event at which it took effect (see tracereplay.Replayer).
LATE: dict[tuple[str, str], dict[int, int]] = {
    # 06 (c): the interrupt reached the flag only after SaveImageWebsocket's last progress check.
    ("0.3.64", "06-interrupt.jsonl"): {73: 188},
    # 0.33.0, 06 (c): sent after 2 previews, it landed after the 14th (same race, other timing).
    ("0.33", "06-interrupt.jsonl"): {73: 115},
}
#: 09b fires GET /history on `execution_success`; the real server answered `{}` in 2 of 10
#: tries, the fake (deterministically at that point) always does: both shapes are accepted.
RACY_HISTORY = {"09b-history-race.jsonl"}

CASES = [(version, p.name) for version, folder in TRACE_SETS.items() for p in sorted(folder.glob("*.jsonl"))]
IDS = [f"{version}/{name}" for version, name in CASES]


def _split(frames: list[Any]) -> tuple[list[str], list[str]]:
    def key(frame: Any) -> str:
        return json.dumps(frame, sort_keys=True)

    non_status = collapse_runs([f for f in frames if f.get("type") != "status"])
    status = [key(f) for f in frames if f.get("type") == "status"]
    return [key(f) for f in non_status], status


def _diff(label: str, expected: list[str], actual: list[str]) -> str:
    lines = difflib.unified_diff(expected, actual, "recorded", "fake", lineterm="", n=2)
    return f"connection {label}:\n" + "\n".join(line[:300] for line in lines)


def _allowed(name: str, expected: HttpExchange, actual: HttpExchange) -> bool:
    for (file, method, prefix), (status, content_type) in ALLOWED_HTTP.items():
        if file == name and expected.method == method and expected.path.startswith(prefix):
            if (actual.status, actual.content_type) == (status, content_type) and expected.status != actual.status or (
                expected.content_type != actual.content_type and actual.content_type == content_type
            ):
                return True
    return False


def _http_problems(name: str, expected: list[HttpExchange], actual: list[HttpExchange]) -> list[str]:
    problems = []
    for exp, act in zip(expected, actual, strict=True):
        where = f"{exp.method} {exp.path}"
        if _allowed(name, exp, act):
            continue
        if exp.status != act.status:
            problems.append(f"{where}: status {act.status}, recorded {exp.status}")
            continue
        if exp.content_type is not None and exp.content_type != act.content_type:
            problems.append(f"{where}: Content-Type {act.content_type}, recorded {exp.content_type}")
        path = exp.path.split("?")[0].removeprefix("/api")
        if path == "/system_stats" and exp.body is not None:
            problems += _system_stats_problems(where, exp.body, act.body)
            continue
        if exp.body is None or path in BODY_NOT_COMPARED or path.startswith("/object_info") and exp.body == {}:
            if path.startswith("/object_info/") and exp.body is not None and exp.body != act.body:
                problems.append(f"{where}: body {json.dumps(act.body)[:300]} recorded {json.dumps(exp.body)[:300]}")
            continue
        if name in RACY_HISTORY and path.startswith("/history/") and act.body == {}:
            continue
        if exp.path.removeprefix("/api").startswith(BODY_COUNT_ONLY):
            if len(exp.body) != len(act.body or {}):
                problems.append(f"{where}: {len(act.body or {})} entries, recorded {len(exp.body)}")
            continue
        if exp.body != act.body:
            problems.append(f"{where}: body\n  fake     {json.dumps(act.body)[:600]}\n  recorded {json.dumps(exp.body)[:600]}")
    return problems


def _system_stats_problems(where: str, expected: Any, actual: Any) -> list[str]:
    """Same keys (system and devices) and the same imitated versions; the values are the fake's."""
    if not isinstance(expected, dict) or not isinstance(actual, dict):
        return [f"{where}: body {actual!r}, recorded {expected!r}"]
    problems = []
    exp_system, act_system = expected.get("system", {}), actual.get("system", {})
    if list(exp_system) != list(act_system):
        problems.append(f"{where}: system keys {list(act_system)}, recorded {list(exp_system)}")
    for key in ("comfyui_version", "required_frontend_version", "os"):
        if exp_system.get(key) != act_system.get(key):
            problems.append(f"{where}: system.{key} {act_system.get(key)!r}, recorded {exp_system.get(key)!r}")
    if [list(d) for d in expected.get("devices", [])] != [list(d) for d in actual.get("devices", [])]:
        problems.append(f"{where}: device keys differ")
    return problems


_REPLAYS: dict[tuple[str, str], Any] = {}


async def replayed(version: str, name: str) -> Any:
    """The trace's client side replayed against a fresh fake of its profile, once per trace
    and process (both comparisons below read the same replay)."""
    key = (version, name)
    if key not in _REPLAYS:
        server = FakeComfy(FakeConfig(time_scale=1.0, seed=11, comfyui_version=version))
        await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                events = load(name, version)
                _REPLAYS[key] = await Replayer(server, session, events, late=LATE.get(key)).run()
        finally:
            await server.stop()
    return _REPLAYS[key]


@pytest.mark.parametrize(("version", "name"), CASES, ids=IDS)
async def test_trace_conformance(version: str, name: str) -> None:
    replay = await replayed(version, name)
    problems = []
    for label in sorted(set(replay.expected_frames) | set(replay.actual_frames)):
        exp_main, exp_status = _split(replay.expected_frames.get(label, []))
        act_main, act_status = _split(replay.actual_frames.get(label, []))
        if exp_main != act_main:
            problems.append(_diff(label, exp_main, act_main))
        if exp_status != act_status:
            problems.append(_diff(label + " (status)", exp_status, act_status))
    problems += _http_problems(name, replay.expected_http, replay.actual_http)
    assert not problems, f"{name}: {len(problems)} difference(s) (sync notes: {replay.unsynced})\n" + "\n".join(problems)


#: Message types compared byte for byte (after masking ids, timestamps, file names and
#: progress numbers). `execution_error` is left out: its traceback and tensor reprs differ
#: on purpose (docs/fake_comfy.md).
BYTE_EXACT = {
    "status", "execution_start", "execution_cached", "executing", "executed", "progress", "progress_state",
    "execution_success", "execution_interrupted", "feature_flags",
}  # fmt: skip
MASKS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r'"sid": "[0-9a-f]{32}"'), '"sid": <hex>'),
    (re.compile(r'"timestamp": \d+'), '"timestamp": <ts>'),
    (re.compile(r'"filename": "[^"]*"'), '"filename": <file>'),
    (re.compile(r'"(value|max)": \d+\.\d+'), r'"\1": <float>'),
    (re.compile(r'"(value|max)": \d+'), r'"\1": <int>'),
]


#: Node-id lists whose order is the recording process's set (hash) order (`tracereplay.SET_ORDER`):
#: their items are sorted in place, the text around them stays as sent.
SET_LISTS = re.compile(r'"(executed|nodes|current_outputs)": \[([^\[\]]*)\]')


def _sorted_set_list(match: re.Match[str]) -> str:
    items = sorted(item.strip() for item in match.group(2).split(",")) if match.group(2) else []
    return f'"{match.group(1)}": [{", ".join(items)}]'


def _masked(texts: list[str]) -> tuple[list[str], list[str]]:
    kept = []
    for text in texts:
        if json.loads(text)["type"] in BYTE_EXACT:
            text = SET_LISTS.sub(_sorted_set_list, text)
            for pattern, replacement in MASKS:
                text = pattern.sub(replacement, text)
            kept.append(text)
    non_status = collapse_runs([t for t in kept if not t.startswith('{"type": "status"')])
    return non_status, [t for t in kept if t.startswith('{"type": "status"')]


@pytest.mark.parametrize(("version", "name"), CASES, ids=IDS)
async def test_trace_frames_are_byte_identical(version: str, name: str) -> None:
    """JSON text exactly as ComfyUI writes it: separators, key order, int vs float."""
    replay = await replayed(version, name)
    problems = []
    for label in sorted(set(replay.expected_texts) | set(replay.actual_texts)):
        for part, exp, act in zip(
            ("", " (status)"), _masked(replay.expected_texts.get(label, [])), _masked(replay.actual_texts.get(label, [])), strict=True
        ):
            if exp != act:
                problems.append(_diff(label + part, exp, act))
    assert not problems, f"{name}:\n" + "\n".join(problems)
