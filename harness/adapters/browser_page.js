// comfy-chaos: the harness side of the user-page contract (docs/browser.md). Added to the
// page before its own scripts run; the harness calls window.__comfyChaosPage, which talks
// to the page's window.comfyChaos = { name?, version?, ready?(), submit(task), state() }.
(() => {
  const WAIT_MS = 110000;
  const page = () => window.comfyChaos;

  async function ready() {
    const start = Date.now();
    while (!page()) {
      if (Date.now() - start > WAIT_MS) throw new Error("the page never defined window.comfyChaos (docs/browser.md)");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const name of ["submit", "state"]) {
      if (typeof page()[name] !== "function") throw new Error(`window.comfyChaos.${name} is not a function (docs/browser.md)`);
    }
    if (typeof page().ready === "function") await page().ready();
    return { name: page().name ?? null, version: page().version ?? null };
  }

  async function submit(taskId, workflow) {
    try {
      const reply = await page().submit({ taskId, workflow });
      return { promptId: reply?.promptId ?? null, error: reply?.promptId ? null : reply?.error ?? "submit() gave no promptId" };
    } catch (error) {
      return { promptId: null, error: String(error?.message ?? error) };
    }
  }

  const OUTCOMES = new Set(["success", "error", "interrupted"]);
  function observe() {
    const shown = page().state()?.tasks ?? [];
    const entry = (task) => ({ id: task.promptId ? String(task.promptId) : null, tag: String(task.taskId) });
    return {
      running: shown.filter((task) => task.status === "running").map(entry),
      pending: shown.filter((task) => task.status === "pending").map(entry),
      history: shown
        .filter((task) => task.status === "done" && OUTCOMES.has(task.outcome))
        .map((task) => ({ ...entry(task), outcome: task.outcome, outputs: task.outputs ?? {}, detail: task.detail ?? null })),
      active: null,
      queueRemaining: null,
      counters: {},
      events: [],
    };
  }

  window.__comfyChaosPage = { ready, submit, observe };
})();
