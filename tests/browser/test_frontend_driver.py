"""The frontend driver (`harness/adapters/browser_frontend.js`) run in Node against a stand-in
of the page's stores (no browser): it must queue a task only once the task's workflow tab is
in front, as the Run button does. A page still between tabs (no active workflow) filed the
job under no workflow, so no tab ever showed its status: frontend 1.48.7 passed
`frame/bom-final` in 2 of 3 runs that way while the real page, queued from its tab, keeps
the tab spinning."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from comfy_chaos.harness.adapters import browser

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

# A stand-in page: the workflow store has no active workflow until `switch_ms` after
# loadApiJson (the real page mid-switch, or before its first workflow is shown).
PAGE = r"""
const vm = require("vm");
const fs = require("fs");
const [driverPath, switchMs] = process.argv.slice(1);
const workflowStore = { activeWorkflow: null, openWorkflows: [] };
const stores = new Map([["workflow", workflowStore]]);
const queuedUnder = [];
const api = { addEventListener() {}, async queuePrompt() { return { prompt_id: `p${queuedUnder.length - 1}` }; } };
const app = {
  api,
  async graphToPrompt() { return { output: {} }; },
  async loadApiJson(workflow, name) {
    workflowStore.activeWorkflow = null;
    setTimeout(() => { workflowStore.activeWorkflow = { path: `workflows/${name}.json` }; }, Number(switchMs));
  },
  async queuePrompt() {
    queuedUnder.push(workflowStore.activeWorkflow?.path ?? null);
    await api.queuePrompt();
  },
};
const pinia = { _s: stores };
const document = { querySelector: () => ({ __vue_app__: { config: { globalProperties: { $pinia: pinia } } } }) };
const window = { app };
vm.runInNewContext(fs.readFileSync(driverPath, "utf8"), { window, document, setTimeout });
(async () => {
  const replies = [];
  for (const id of ["t0", "t1"]) {
    replies.push(await window.__comfyChaos.submit(id, { "1": { class_type: "X", inputs: {}, _meta: { chaos_task: id } } }));
  }
  console.log(JSON.stringify({ queuedUnder, replies }));
})();
"""


def _drive(switch_ms: int) -> dict[str, list[object]]:
    assert NODE is not None
    done = subprocess.run([NODE, "-e", PAGE, str(browser.FRONTEND_DRIVER), str(switch_ms)],
                          capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, list[object]] = json.loads(done.stdout)
    return result


def test_a_task_is_queued_from_its_own_tab_once_the_page_has_switched_to_it() -> None:
    result = _drive(300)
    assert result["queuedUnder"] == ["workflows/chaos-t0.json", "workflows/chaos-t1.json"]
    assert [r["promptId"] for r in result["replies"]] == ["p0", "p1"]  # type: ignore[index]
