"""Web clients in headless Chromium: ComfyUI's own frontend (`--client frontend`) and users'
pages (`--client web:<path-or-url>`), scored like any other client (docs/browser.md).

A browser client has a warm-up: the runner calls `warm_up(session, server)` after the fake
server and the proxy are up and before the run clock (t0) and the fault schedule start; the
page loads, connects and is ready, and none of that counts in any figure. Then `run()`
queues each task through the page as a user would and reads back what the page shows:

* a task is **reported** when the page shows it finished (in its queue/history with an
  outcome) and no longer shows it running anywhere (queue, progress bar / execution state);
* what the page shows as running goes to the harness as `ui` reports; a task the server
  finished but the page still shows running at the judgement is scored **stuck UI**;
* screenshots (the first stuck moment, the judgement) go into the report as evidence;
  console errors and the page's reconnects are the client's notes.

Browser clients are not scalable (a page's timers are real time): the harness runs them at
time_scale 1.0.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import structlog

from comfy_chaos.harness.adapters.base import AdapterSession, Task
from comfy_chaos.harness.adapters.browser_chromium import SHARED, VERSION_RE, BrowserUnavailable, frontend_static

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
FRONTEND_DRIVER = HERE / "browser_frontend.js"
PAGE_DRIVER = HERE / "browser_page.js"
WARM_UP_TIMEOUT_S = 300.0  # includes a first download of the frontend package
PAGE_READY_TIMEOUT_S = 120.0
POLL_S = 0.25
EVAL_TIMEOUT_S = 10.0
SUBMIT_TIMEOUT_S = 60.0
STUCK_EVIDENCE_S = 5.0  # the page shows a task running this long after the server finished it
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOT_QUALITY = 60
# Stored before the page loads: no first-run template dialog, and no "missing nodes" dialog
# for the frontend's default graph (SD nodes the fake's catalogue does not have).
RETURNING_USER = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Workflow.ShowMissingNodesWarning": False,
    "Comfy.Workflow.ShowMissingModelsWarning": False,
}

FRONTEND_READY = (
    "() => !!(window.app && window.app.graph && (window.app.api ?? window.comfyAPI?.api?.api)?.socket"
    " && (window.app.api ?? window.comfyAPI.api.api).socket.readyState === 1)"
)


def _shot(label: str, t: float, data: bytes) -> dict[str, Any]:
    return {
        "kind": "screenshot",
        "label": label,
        "t": t,
        "src": "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii"),
    }


@dataclasses.dataclass
class _Tracked:
    task_id: str
    prompt_id: str | None = None
    reported: bool = False
    shown_running: bool = False


class BrowserClient:
    """Common part of the browser adapters: the page, the warm-up, the observe loop."""

    scalable = False
    warm_up_timeout = WARM_UP_TIMEOUT_S
    client_name = "browser"

    def __init__(self) -> None:
        self.name = self.client_name
        self.version: str | None = None
        self._pw: Any = None
        self._browser: Any = None
        self._context: Any = None
        self.page: Any = None
        self.server: Any = None
        self.session: AdapterSession | None = None
        self.page_load_s: float | None = None
        self._usage_start: tuple[float, int] = (0.0, 0)
        self._tracked: dict[str, _Tracked] = {}
        self._by_prompt: dict[str, str] = {}
        self._stuck_shot = False
        self._last_running: tuple[str, ...] | None = None
        self._console_errors = 0

    # ---- to be provided by the kinds ------------------------------------------------------

    async def open_page(self, session: AdapterSession) -> None:
        raise NotImplementedError

    async def submit(self, task: Task) -> dict[str, Any]:
        raise NotImplementedError

    async def observe(self) -> dict[str, Any]:
        raise NotImplementedError

    # ---- warm-up -----------------------------------------------------------------------------

    async def warm_up(self, session: AdapterSession, server: Any) -> None:
        """Load the page until it is connected and ready; the runner starts t0 after this."""
        self.session, self.server = session, server
        try:
            from playwright.async_api import async_playwright
        except ImportError as exc:
            raise BrowserUnavailable("Playwright is not installed: pip install 'comfy-chaos[browser]'") from exc
        try:
            endpoint = await SHARED.get()
            self._pw = await async_playwright().start()
            self._browser = await self._pw.chromium.connect_over_cdp(endpoint, timeout=30_000)
            self._context = await self._browser.new_context(viewport=VIEWPORT)
            self.page = await self._context.new_page()
            self.page.on("console", self._on_console)
            self.page.on("pageerror", lambda error: self._note(f"page error: {error}"))
            started = time.monotonic()
            await self.open_page(session)
            self.page_load_s = round(time.monotonic() - started, 3)
        except BaseException:
            await asyncio.shield(self._close(session))  # run() will not be called: nothing may outlive this
            raise
        session.stats({"page_load_s": self.page_load_s})
        log.info("browser.ready", client=self.name, version=self.version, page_load_s=self.page_load_s)

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self._console_errors += 1
            self._note(f"console error: {message.text}")

    def _note(self, text: str) -> None:
        if self.session is not None:
            self.session.note(text)

    # ---- the run -----------------------------------------------------------------------------

    async def run(self, session: AdapterSession) -> None:
        if self.page is None:
            raise BrowserUnavailable("the page was not loaded: the runner did not call warm_up()")
        self._usage_start = SHARED.usage()  # after the warm-up: page load is not the run's
        watcher = asyncio.create_task(self._watch(session))
        try:
            async for task in session.tasks():
                self._tracked[task.task_id] = _Tracked(task.task_id)
                try:
                    async with asyncio.timeout(SUBMIT_TIMEOUT_S):
                        reply = await self.submit(task)
                except TimeoutError:
                    reply = {"error": f"the page did not queue it within {SUBMIT_TIMEOUT_S:.0f} s"}
                prompt_id = reply.get("promptId")
                if prompt_id:
                    self._tracked[task.task_id].prompt_id = str(prompt_id)
                    self._by_prompt[str(prompt_id)] = task.task_id
                    session.submitted(task.task_id, str(prompt_id))
                else:
                    self._tracked[task.task_id].reported = True
                    session.result(task.task_id, "error", detail=f"the page could not queue it: {reply.get('error')}")
            judged = getattr(session, "judged", None)
            async with asyncio.timeout(session.deadline_s + 30.0):
                if judged is not None:
                    await judged.wait()
                else:
                    await watcher
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            await self._evidence("at judgement")
            await self._close(session)
        session.done()

    async def _watch(self, session: AdapterSession) -> None:
        """Poll the page's state; report, track what it shows running, keep evidence."""
        while True:
            try:
                async with asyncio.timeout(EVAL_TIMEOUT_S):
                    state = await self.observe()
            except TimeoutError:
                self._note(f"the page did not answer within {EVAL_TIMEOUT_S:.0f} s")
                state = None
            except Exception as exc:  # the page navigated away, crashed, threw: it shows nothing new
                self._note(f"reading the page failed: {exc!r}"[:500])
                state = None
            if state is not None:
                await self._digest(session, state)
            await asyncio.sleep(POLL_S)  # a poll interval, not synchronisation

    def _task_of(self, entry: dict[str, Any]) -> str | None:
        task_id = self._by_prompt.get(str(entry.get("id") or ""))
        if task_id is None and entry.get("tag") in self._tracked:
            task_id = entry["tag"]
            if entry.get("id"):
                self._by_prompt[str(entry["id"])] = task_id
        return task_id

    async def _digest(self, session: AdapterSession, state: dict[str, Any]) -> None:
        for event in state.get("events") or []:
            self._note(f"page {event.get('event')}")
        counters = state.get("counters") or {}
        if counters:
            session.stats({"reconnects": counters.get("reconnected", 0), "console_errors": self._console_errors})
        running: dict[str, list[str]] = {}
        for where in ("running", "pending"):
            for entry in state.get(where) or []:
                task_id = self._task_of(entry)
                if task_id is not None:
                    running.setdefault(task_id, []).append(f"in the queue as {where}")
        active = state.get("active")
        if active:
            task_id = self._task_of({"id": active})
            if task_id is not None:
                running.setdefault(task_id, []).append("shown executing (progress)")
        for task_id, status in (state.get("tabs") or {}).items():
            # the active tab shows no status of its own (the frontend's WorkflowTab.vue)
            if status == "running" and task_id in self._tracked and task_id != state.get("activeTab"):
                running.setdefault(task_id, []).append("its workflow tab shows it running")
        finished = {self._task_of(entry) for entry in state.get("history") or [] if entry.get("outcome")}
        queue_remaining = state.get("queueRemaining")
        if queue_remaining and state.get("queueCountShown", True):
            # "N in the queue" without ids: every task the page has not shown finished is in it
            for waiting in self._tracked.values():
                if waiting.prompt_id and not waiting.reported and waiting.task_id not in finished:
                    running.setdefault(waiting.task_id, []).append(f"counted in the queue badge ({queue_remaining})")
        for entry in state.get("history") or []:
            task_id = self._task_of(entry)
            tracked = self._tracked.get(task_id) if task_id else None
            if tracked is None or task_id is None or tracked.reported or task_id in running or not entry.get("outcome"):
                continue
            outputs = entry.get("outputs")
            if outputs is None and entry.get("outcome") == "success":
                outputs = await self.job_outputs(str(entry.get("id")))
            tracked.reported = True
            session.result(task_id, entry["outcome"], outputs=outputs, detail=entry.get("detail"), prompt_id=entry.get("id"))
        shown = tuple(sorted(running))
        if shown != self._last_running:
            self._last_running = shown
            parts = [f"{tid}: {', '.join(running[tid])}" for tid in shown]
            ui = getattr(session, "ui", None)
            if ui is not None:
                ui(list(shown), "; ".join(parts) or "nothing shown running")
        if shown and not self._stuck_shot and self._finished_long_ago(shown):
            self._stuck_shot = True
            await self._evidence("first stuck moment")

    async def job_outputs(self, prompt_id: str) -> dict[str, Any] | None:
        return None

    def _finished_long_ago(self, task_ids: tuple[str, ...]) -> bool:
        """Evidence timing only (never a report): has the server finished one of these a while ago?"""
        ledger = getattr(self.server, "ledger", None)
        if ledger is None:
            return False
        now = time.monotonic()
        for task_id in task_ids:
            prompt_id = self._tracked[task_id].prompt_id if task_id in self._tracked else None
            record = ledger.prompts.get(prompt_id) if prompt_id else None
            if record is not None and record.completed_at is not None and now - record.completed_at >= STUCK_EVIDENCE_S:
                return True
        return False

    async def _evidence(self, label: str) -> None:
        if self.page is None or self.session is None:
            return
        try:
            async with asyncio.timeout(5.0):
                data = await self.page.screenshot(type="jpeg", quality=SCREENSHOT_QUALITY)
        except Exception as exc:  # evidence is best effort; the verdict does not depend on it
            self._note(f"screenshot {label} failed: {exc!r}")
            return
        evidence = getattr(self.session.info, "evidence", None)
        if evidence is not None:
            evidence.append(_shot(label, time.monotonic(), data))

    async def _close(self, session: AdapterSession) -> None:
        # Chromium's CPU is a counter, not the run's cpu_s: the process is shared and renders
        # the page; the CPU bar (docs/scoring.md) is meant for a client process spinning.
        cpu, rss = SHARED.usage()
        if self._usage_start != (0.0, 0):
            session.stats({"browser_cpu_s": round(max(0.0, cpu - self._usage_start[0]), 3)})
        session.stats({"browser_rss_mib": round(rss / 2**20, 1)})
        for step in (self._context, self._browser):
            if step is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5.0):
                        await step.close()
        if self._pw is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await self._pw.stop()
        self._context = self._browser = self._pw = self.page = None


class FrontendAdapter(BrowserClient):
    """ComfyUI's own web frontend (PyPI comfyui-frontend-package), served by the fake.

    `frontend` takes the version the fake pins (`/system_stats` required_frontend_version,
    i.e. the protocol profile's); `frontend@1.27.10` takes that version."""

    client_name = "frontend"

    def __init__(self, version: str | None = None) -> None:
        super().__init__()
        self.pinned = version
        self.name = f"frontend@{version}" if version else "frontend"

    async def open_page(self, session: AdapterSession) -> None:
        version = self.pinned or await _required_frontend_version(session.base_url)
        self.version = version
        static = await asyncio.to_thread(frontend_static, version)
        self.server.frontend.static_dir = static
        self.server.frontend.settings.update(RETURNING_USER)
        await self.page.goto(session.base_url + "/", wait_until="domcontentloaded", timeout=PAGE_READY_TIMEOUT_S * 1000)
        await self.page.wait_for_function(FRONTEND_READY, timeout=PAGE_READY_TIMEOUT_S * 1000, polling=100)
        await self.page.evaluate(FRONTEND_DRIVER.read_text())
        await self._open_queue_panel()
        session.ready("comfyui-frontend", version, caps=["browser"])

    async def _open_queue_panel(self) -> None:
        """Show the queue panel, so screenshots show what the user sees of the jobs."""
        with contextlib.suppress(Exception):
            if not await self.page.evaluate("() => window.__comfyChaos.openQueuePanel()"):
                self._note("could not open the queue panel (screenshots show the canvas only)")

    async def submit(self, task: Task) -> dict[str, Any]:
        result: dict[str, Any] = await self.page.evaluate(
            "([id, workflow]) => window.__comfyChaos.submit(id, workflow)", [task.task_id, task.workflow]
        )
        return result

    async def observe(self) -> dict[str, Any]:
        state: dict[str, Any] = await self.page.evaluate("() => window.__comfyChaos.observe()")
        return state

    async def job_outputs(self, prompt_id: str) -> dict[str, Any] | None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(EVAL_TIMEOUT_S):
                outputs = await self.page.evaluate("(id) => window.__comfyChaos.jobOutputs(id)", prompt_id)
                return outputs if isinstance(outputs, dict) else None
        return None


class WebPageAdapter(BrowserClient):
    """A user's own web page, driven through the contract in docs/browser.md.

    `web:<folder or .html file>`: served by the fake at `/` (same origin as the API).
    `web:<http(s) URL>`: the user's dev server; the page is told the server's URL in the
    `comfy_url` query parameter, and the fake's loopback Origin check is off (as ComfyUI with
    --enable-cors-header) since the page is on another origin."""

    client_name = "web"

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.name = f"web:{target}"

    async def open_page(self, session: AdapterSession) -> None:
        if self.target.startswith(("http://", "https://")):
            self.server.config = dataclasses.replace(self.server.config, origin_check=False)
            separator = "&" if "?" in self.target else "?"
            url = f"{self.target}{separator}{urlencode({'comfy_url': session.base_url})}"
        else:
            path = Path(self.target).expanduser().resolve()
            if not path.exists():
                raise BrowserUnavailable(f"--client web:{self.target}: {path} does not exist")
            folder, page = (path, "") if path.is_dir() else (path.parent, path.name)
            self.server.frontend.static_dir = folder
            url = f"{session.base_url}/{page}?{urlencode({'comfy_url': session.base_url})}"
        await self.page.add_init_script(PAGE_DRIVER.read_text())
        await self.page.goto(url, wait_until="domcontentloaded", timeout=PAGE_READY_TIMEOUT_S * 1000)
        info = await self.page.evaluate("() => window.__comfyChaosPage.ready()")
        self.version = str(info.get("version") or "") or None
        session.ready(str(info.get("name") or "web-page"), self.version, caps=["browser"])

    async def submit(self, task: Task) -> dict[str, Any]:
        result: dict[str, Any] = await self.page.evaluate(
            "([id, workflow]) => window.__comfyChaosPage.submit(id, workflow)", [task.task_id, task.workflow]
        )
        return result

    async def observe(self) -> dict[str, Any]:
        state: dict[str, Any] = await self.page.evaluate("() => window.__comfyChaosPage.observe()")
        return state


async def _required_frontend_version(base_url: str) -> str:
    """The frontend version the server pins (ComfyUI's /system_stats), as ComfyUI serves it."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(10.0):
        async with http.get(base_url + "/system_stats") as response:
            body = await response.json(content_type=None)
    version = (body.get("system") or {}).get("required_frontend_version")
    if not isinstance(version, str):
        raise BrowserUnavailable(f"{base_url}/system_stats names no required_frontend_version")
    return version


def load_browser_adapter(spec: str) -> BrowserClient | None:
    """`frontend`, `frontend@<version>`, `web:<path-or-url>`; None for other specs."""
    if spec == "frontend":
        return FrontendAdapter()
    if spec.startswith("frontend@"):
        version = spec.partition("@")[2]
        if not VERSION_RE.match(version):
            raise ValueError(f"--client {spec}: expected frontend@MAJOR.MINOR.PATCH, e.g. frontend@1.27.10")
        return FrontendAdapter(version)
    if spec.startswith("web:"):
        target = spec[len("web:"):].strip()
        if not target:
            raise ValueError("--client web: needs a page: web:<folder or .html file> or web:<http URL>")
        if not target.startswith(("http://", "https://")) and not Path(target).expanduser().exists():
            raise ValueError(f"--client {spec}: {Path(target).expanduser().resolve()} does not exist")
        return WebPageAdapter(target)
    return None


__all__ = ["BrowserClient", "BrowserUnavailable", "FrontendAdapter", "WebPageAdapter", "load_browser_adapter"]
