// comfy-chaos: drives ComfyUI's own web frontend the way a user does, and reads back what
// the page shows. Installed by harness/adapters/browser.py after the page is ready
// (`window.app` exists and the socket is open). Works with frontend 1.2x (queue from
// /queue + /history) and 1.3x+ (queue from /api/jobs): it reads the page's Pinia stores.
(() => {
  if (window.__comfyChaos) return;
  const app = window.app;
  const api = app.api ?? window.comfyAPI?.api?.api;
  const pinia = () => document.querySelector("#vue-app")?.__vue_app__?.config?.globalProperties?.$pinia;
  const store = (id) => pinia()?._s?.get(id);

  // The frontend turns an API workflow into a graph and back; only `_meta.title` survives
  // that round trip. The task's tag (`_meta.chaos_task`) is put back into the converted
  // prompt, nothing else is changed.
  let pendingMeta = null;
  const graphToPrompt = app.graphToPrompt.bind(app);
  app.graphToPrompt = async (...args) => {
    const prompt = await graphToPrompt(...args);
    if (pendingMeta && prompt?.output) {
      for (const [id, meta] of Object.entries(pendingMeta)) {
        if (prompt.output[id]) prompt.output[id]._meta = { ...meta, ...(prompt.output[id]._meta ?? {}) };
      }
    }
    return prompt;
  };
  let lastReply = null;
  let lastError = null;
  const queuePrompt = api.queuePrompt.bind(api);
  api.queuePrompt = async (...args) => {
    try {
      lastReply = await queuePrompt(...args);
      return lastReply;
    } catch (error) {
      lastError = String(error?.message ?? error);
      throw error;
    }
  };

  const counters = { reconnecting: 0, reconnected: 0 };
  const events = [];
  for (const name of ["reconnecting", "reconnected"]) {
    api.addEventListener(name, () => {
      counters[name] += 1;
      events.push({ event: name, t: Date.now() });
    });
  }

  const SWITCH_WAIT_MS = 15000; // a loaded machine: the tab switch has taken over 1 s
  let chain = Promise.resolve();
  function submit(taskId, workflow) {
    const run = async () => {
      pendingMeta = {};
      for (const [id, node] of Object.entries(workflow)) if (node._meta) pendingMeta[id] = node._meta;
      lastReply = null;
      lastError = null;
      try {
        await app.loadApiJson(workflow, `chaos-${taskId}`);
        // loadApiJson does not wait for the new workflow tab (1.4x+): queueing before it is
        // active would file the job under the previous tab, or under none while the page is
        // between tabs (then no tab ever shows its status, which no user can do: the Run
        // button queues the tab in front).
        for (let waited = 0; waited < SWITCH_WAIT_MS && !activeIs(`chaos-${taskId}`); waited += 25) {
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        await app.queuePrompt(0, 1);
      } catch (error) {
        lastError = lastError ?? String(error?.message ?? error);
      } finally {
        pendingMeta = null;
      }
      return { promptId: lastReply?.prompt_id ?? null, error: lastReply?.prompt_id ? null : lastError ?? "no reply" };
    };
    chain = chain.then(run, run);
    return chain;
  }

  function activeIs(name) {
    const workflows = store("workflow");
    if (!workflows) return true; // no workflow store: nothing to wait for
    const active = workflows.activeWorkflow;
    if (!active) return false; // between tabs
    return String(active.path ?? active.key ?? active.filename ?? "").replace(/\.json$/, "").endsWith(name);
  }
  const idOf = (task) => String(task.promptId ?? task.jobId ?? task.job?.id ?? "");
  function tagOf(task) {
    const inputs = task.promptInputs ?? (Array.isArray(task.prompt) ? task.prompt[2] : null);
    if (!inputs) return null;
    for (const node of Object.values(inputs)) if (node?._meta?.chaos_task) return node._meta.chaos_task;
    return null;
  }
  function outcomeOf(task) {
    if (task.job) {
      const status = task.job.status;
      if (status === "completed") return "success";
      if (status === "failed") return task.interrupted ? "interrupted" : "error";
      if (status === "cancelled") return "interrupted";
      return null;
    }
    if (task.interrupted) return "interrupted";
    const status = task.status?.status_str;
    return status === "success" ? "success" : status === "error" ? "error" : null;
  }
  const item = (task) => ({ id: idOf(task), tag: tagOf(task) });

  function observe() {
    const queue = store("queue");
    const execution = store("execution");
    const count = store("queuePendingTaskCount");
    const history = (queue?.historyTasks ?? []).map((task) => ({
      ...item(task),
      outcome: outcomeOf(task),
      outputs: task.job ? null : task.outputs ?? null,
      detail: task.job?.execution_error?.exception_message ?? null,
    }));
    // 1.4x+: each queued workflow's tab has its own status (a spinner while "running"). The
    // active tab does not show its own status (WorkflowTab.vue): `activeTab` says which it is.
    const tabs = {};
    let activeTab = null;
    if (typeof execution?.getWorkflowStatus === "function") {
      const workflows = store("workflow");
      for (const workflow of workflows?.openWorkflows ?? []) {
        const name = String(workflow.path ?? workflow.key ?? workflow.filename ?? "");
        const match = /chaos-([^/]+?)(\.json)?$/.exec(name);
        if (match && workflow === workflows.activeWorkflow) activeTab = match[1];
        const status = match ? execution.getWorkflowStatus(workflow) : undefined;
        if (status) tabs[match[1]] = status;
      }
    }
    return {
      tabs,
      activeTab,
      running: (queue?.runningTasks ?? []).map(item),
      pending: (queue?.pendingTasks ?? []).map(item),
      history,
      active: execution ? String(execution.activePromptId ?? execution.activeJobId ?? "") || null : null,
      queueRemaining: count?.count ?? null,
      // The count of the last `status` frame is on screen only in 1.2x (the "queue" sidebar
      // tab's badge, the queue button); 1.4x+ shows the job list's count instead ("N active").
      queueCountShown: (store("sidebarTab")?.sidebarTabs ?? []).some((tab) => tab.id === "queue"),
      socket: api.socket?.readyState ?? null,
      counters: { ...counters },
      events: events.splice(0),
    };
  }

  // 1.3x+ lists jobs without their outputs; the page reads them from /api/jobs/{id}
  // when the user opens a job, which is what this does.
  async function jobOutputs(id) {
    const response = await api.fetchApi(`/jobs/${encodeURIComponent(id)}`);
    if (response.status !== 200) return null;
    const job = await response.json();
    return job.outputs ?? null;
  }

  // Show the queue panel (1.2x: "queue", 1.3x+: "job-history"), so screenshots show the jobs.
  function openQueuePanel() {
    const sidebar = store("sidebarTab");
    if (!sidebar?.toggleSidebarTab) return false;
    const ids = (sidebar.sidebarTabs ?? []).map((tab) => tab.id);
    const id = ["queue", "job-history"].find((candidate) => ids.includes(candidate));
    if (!id || sidebar.activeSidebarTabId === id) return Boolean(id);
    sidebar.toggleSidebarTab(id);
    return true;
  }

  window.__comfyChaos = { submit, observe, jobOutputs, openQueuePanel };
})();
