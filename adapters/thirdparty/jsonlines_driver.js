'use strict';
// JSON-lines driver shared by the adapters that wrap third-party npm ComfyUI libraries
// (the JavaScript twin of jsonlines_driver.py).
//
// Speaks the subprocess side of Contract 5 (docs/architecture.md): reads `start`, `task`,
// `end` on stdin; writes `ready`, `submitted`, `result`, `note`, `stats`, `done`. Each task
// is one `runTask` call of the library adapter; at most `max_concurrency` run at once, the
// rest wait in arrival order. A rejected call becomes `outcome: error` with the error as
// detail. At the deadline, or when stdin ends, the driver notes what is still open, writes
// `stats` and `done` and exits without waiting for the library.
//
// Libraries log to stdout (pino, console.log); one stray line there is a protocol error.
// `protectStdout()` therefore keeps a private descriptor on the protocol pipe and points
// fd 1 at stderr, before the library is loaded (what harness/adapters/subprocess_host.py
// does with os.dup2). Standalone: Node built-ins only.

const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');

let protocolFd = 1;

/**
 * Keep the protocol on a private descriptor and send everything else written to fd 1 to
 * stderr. Call before loading the library. Linux: reopens the pipe via /proc/self/fd.
 */
function protectStdout() {
  const saved = fs.openSync('/proc/self/fd/1', 'w');
  fs.closeSync(1);
  const reopened = fs.openSync('/proc/self/fd/2', 'w'); // the lowest free descriptor: 1
  if (reopened !== 1) {
    throw new Error(`protectStdout: expected stderr to land on fd 1, got fd ${reopened}`);
  }
  protocolFd = saved;
}

/** "Name: message", plus the cause fetch() hides behind "fetch failed". */
function describeError(err) {
  if (!(err instanceof Error)) {
    if (err && typeof err === 'object' && 'status' in err && 'url' in err) {
      return `HTTP ${err.status} ${err.statusText || ''} from ${err.url} (the library rejected with the Response)`.trim();
    }
    return `non-Error rejection: ${JSON.stringify(err) ?? String(err)}`.slice(0, 2000);
  }
  const text = `${err.name}: ${err.message}`;
  const cause = err.cause;
  if (!cause) return text;
  if (cause instanceof Error || (cause && typeof cause === 'object' && 'message' in cause)) {
    return `${text} (${cause.code || cause.name || 'cause'}: ${cause.message})`;
  }
  return `${text} (cause: ${JSON.stringify(cause)})`.slice(0, 2000);
}

function run(adapter) {
  const script = path.relative(process.cwd(), process.argv[1] || 'adapter');
  let doneSent = false;

  function emit(message) {
    if (doneSent) return; // library callbacks that fire after `done`
    if (message.type === 'done') doneSent = true;
    fs.writeSync(protocolFd, `${JSON.stringify(message)}\n`);
  }

  function fail(where, what) {
    process.stderr.write(`${script}: ${where}: ${what}\n`);
    process.exit(2);
  }

  function field(message, name, type, where) {
    const value = message[name];
    if (typeof value !== type || value === null) {
      fail(where, `"${message.type}" needs ${type} field "${name}", got ${JSON.stringify(value)}`.slice(0, 300));
    }
    return value;
  }

  const queue = [];
  let started = false;
  let ended = false;
  let finished = false;
  let inFlight = 0;
  let maxConcurrency = 1;
  let deadlineTimer = null;

  function finish(note) {
    if (finished) return;
    finished = true;
    clearTimeout(deadlineTimer);
    if (note) emit({ type: 'note', text: note });
    let counters = {};
    try {
      counters = adapter.counters();
    } catch (err) {
      emit({ type: 'note', text: `counters() failed: ${describeError(err)}` });
    }
    emit({ type: 'stats', counters });
    emit({ type: 'done' });
    process.exit(0);
  }

  function maybeDone() {
    if (ended && inFlight === 0 && queue.length === 0) finish(null);
  }

  async function runOne(taskId, workflow) {
    const ctx = {
      taskId,
      promptId: null,
      submitted(promptId) {
        if (!promptId || ctx.promptId === promptId) return;
        ctx.promptId = promptId;
        emit({ type: 'submitted', task_id: taskId, prompt_id: promptId });
      },
      note(text) {
        emit({ type: 'note', text: `${taskId}: ${text}` });
      },
    };
    let result;
    try {
      result = await adapter.runTask(workflow, ctx);
    } catch (err) {
      result = { outcome: 'error', outputs: null, detail: describeError(err) };
    }
    emit({
      type: 'result',
      task_id: taskId,
      prompt_id: result.promptId || ctx.promptId || null,
      outcome: result.outcome,
      outputs: result.outputs === undefined ? null : result.outputs,
      detail: result.detail || null,
    });
  }

  function pump() {
    while (inFlight < maxConcurrency && queue.length > 0) {
      const { taskId, workflow } = queue.shift();
      inFlight += 1;
      runOne(taskId, workflow).finally(() => {
        inFlight -= 1;
        pump();
        maybeDone();
      });
    }
  }

  async function onStart(message, where) {
    if (started) fail(where, 'second "start" message');
    started = true;
    const start = {
      baseUrl: field(message, 'base_url', 'string', where),
      timeScale: field(message, 'time_scale', 'number', where),
      deadlineS: field(message, 'deadline_s', 'number', where),
      maxConcurrency: Math.max(1, Math.floor(field(message, 'max_concurrency', 'number', where))),
    };
    maxConcurrency = start.maxConcurrency;
    const startedAt = Date.now();
    try {
      await adapter.open(start);
    } catch (err) {
      fail(where, `cannot create the ${adapter.name} client: ${describeError(err)}`);
    }
    emit({ type: 'ready', client: adapter.name, version: adapter.version, caps: adapter.caps });
    // The deadline counts from `start`; `done` must never precede `ready`.
    const left = Math.max(0, start.deadlineS * 1000 - (Date.now() - startedAt));
    deadlineTimer = setTimeout(() => {
      finish(`deadline reached with ${inFlight + queue.length} task(s) unreported`);
    }, left);
  }

  // Lines are handled one after another: a task waits until `start` has created the client.
  const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let lineNo = 0;
  let chain = Promise.resolve();
  input.on('line', (line) => {
    lineNo += 1;
    const where = `stdin line ${lineNo}`;
    chain = chain.then(async () => {
      if (finished || line.trim() === '') return;
      let message;
      try {
        message = JSON.parse(line);
      } catch (err) {
        fail(where, `invalid JSON (${err.message}): ${line.slice(0, 200)}`);
      }
      if (message === null || typeof message !== 'object' || Array.isArray(message)) {
        fail(where, `expected a JSON object, got ${line.slice(0, 200)}`);
      }
      if (!started && message.type !== 'start') {
        fail(where, `expected a 'start' message first, got ${line.slice(0, 200)}`);
      }
      switch (message.type) {
        case 'start':
          await onStart(message, where);
          break;
        case 'task': {
          if (ended) fail(where, '"task" after "end"');
          const taskId = field(message, 'task_id', 'string', where);
          const workflow = field(message, 'workflow', 'object', where);
          if (Array.isArray(workflow)) fail(where, '"task" field "workflow" must be a JSON object');
          queue.push({ taskId, workflow });
          pump();
          break;
        }
        case 'end':
          ended = true;
          maybeDone();
          break;
        default:
          fail(where, `expected 'task' or 'end', got type ${JSON.stringify(message.type)}`);
      }
    });
  });
  input.on('close', () => {
    chain = chain.then(() => {
      if (!started) fail('stdin end', "expected a 'start' message first, got end of input");
      // End of stdin means "stop now" (docs/adapters.md).
      const open = inFlight + queue.length;
      finish(open > 0 ? `stdin closed with ${open} task(s) unreported` : null);
    });
  });
}

/** The installed version of npm package `name` (its package.json may not be exported). */
function packageVersion(name, adapterDir) {
  const file = path.join(adapterDir, 'node_modules', name, 'package.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')).version;
}

/** Node ids of the workflow whose class is an output node (per the server's /object_info). */
function outputNodeIds(workflow, objectInfo) {
  return Object.keys(workflow).filter((id) => {
    const node = workflow[id];
    const info = node && objectInfo[node.class_type];
    return Boolean(info && info.output_node);
  });
}

module.exports = { protectStdout, run, describeError, outputNodeIds, packageVersion };
