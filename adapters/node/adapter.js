#!/usr/bin/env node
'use strict';
// comfy-chaos subprocess adapter (architecture.md, Contract 5) around comfy_client.js.
// stdin:  {"type":"start",...}, {"type":"task",...}*, {"type":"end"}   (JSON lines)
// stdout: ready, submitted, result, note, done                          (JSON lines)
// The adapter only translates; every failure of a task becomes `outcome: error`.

const readline = require('node:readline');
const { ComfyClient } = require('./comfy_client');
const { version } = require('./package.json');

// Request/connect timeout of the example client at time_scale 1.0.
const REQUEST_TIMEOUT_S = 30;

let doneSent = false;

/** Write one JSON line; nothing after `done` (tasks still running at the deadline). */
function emit(message) {
  if (doneSent) return;
  if (message.type === 'done') doneSent = true;
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** "Name: message", plus the cause fetch() hides behind "fetch failed". */
function describeError(err) {
  const text = `${err.name}: ${err.message}`;
  const cause = err.cause;
  if (!cause) return text;
  return `${text} (${cause.code || cause.name || 'cause'}: ${cause.message || String(cause)})`;
}

function fail(where, what) {
  process.stderr.write(`adapters/node/adapter.js: ${where}: ${what}\n`);
  process.exit(2);
}

function requireField(message, name, type, where) {
  const value = message[name];
  if (typeof value !== type) fail(where, `"${message.type}" needs ${type} field "${name}", got ${JSON.stringify(value)}`);
  return value;
}

class AdapterState {
  constructor() {
    this.client = null;
    this.maxConcurrency = 1;
    this.queue = [];
    this.inFlight = 0;
    this.ended = false;
    this.finished = false;
    this.deadlineTimer = null;
  }

  start(message, where) {
    if (this.client) fail(where, 'second "start" message');
    const baseUrl = requireField(message, 'base_url', 'string', where);
    const timeScale = requireField(message, 'time_scale', 'number', where);
    const deadlineS = requireField(message, 'deadline_s', 'number', where);
    this.maxConcurrency = Math.max(1, requireField(message, 'max_concurrency', 'number', where));
    this.client = new ComfyClient(baseUrl, {
      requestTimeoutMs: Math.max(1, REQUEST_TIMEOUT_S * timeScale * 1000),
      onNote: (text) => emit({ type: 'note', text }),
    });
    this.deadlineTimer = setTimeout(() => this.onDeadline(), deadlineS * 1000);
    emit({
      type: 'ready',
      client: 'node',
      version,
      caps: ['submitted', 'outputs', 'interrupted'],
    });
  }

  task(message, where) {
    if (!this.client) fail(where, '"task" before "start"');
    if (this.ended) fail(where, '"task" after "end"');
    const taskId = requireField(message, 'task_id', 'string', where);
    const workflow = requireField(message, 'workflow', 'object', where);
    if (workflow === null || Array.isArray(workflow)) fail(where, '"task" field "workflow" must be a JSON object');
    this.queue.push({ taskId, workflow });
    this.pump();
  }

  end() {
    this.ended = true;
    this.maybeDone();
  }

  pump() {
    while (this.inFlight < this.maxConcurrency && this.queue.length > 0) {
      const task = this.queue.shift();
      this.inFlight += 1;
      this.runTask(task).finally(() => {
        this.inFlight -= 1;
        this.pump();
        this.maybeDone();
      });
    }
  }

  async runTask({ taskId, workflow }) {
    try {
      const result = await this.client.run(workflow, (promptId) => {
        emit({ type: 'submitted', task_id: taskId, prompt_id: promptId });
      });
      emit({
        type: 'result',
        task_id: taskId,
        prompt_id: result.promptId,
        outcome: result.outcome,
        outputs: result.outputs,
        detail: result.detail,
      });
    } catch (err) {
      emit({
        type: 'result',
        task_id: taskId,
        prompt_id: err.promptId || null,
        outcome: 'error',
        outputs: null,
        detail: describeError(err),
      });
    }
  }

  maybeDone() {
    if (this.ended && this.inFlight === 0 && this.queue.length === 0) this.finish();
  }

  onDeadline() {
    const open = this.inFlight + this.queue.length;
    emit({ type: 'note', text: `deadline reached with ${open} task(s) unreported` });
    this.finish();
  }

  finish() {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.deadlineTimer);
    if (this.client) emit({ type: 'stats', counters: this.client.stats });
    emit({ type: 'done' });
    if (this.client) this.client.close();
    process.stdout.write('', () => process.exit(0));
  }
}

function main() {
  const state = new AdapterState();
  const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let lineNo = 0;
  input.on('line', (line) => {
    lineNo += 1;
    if (state.finished || line.trim() === '') return;
    const where = `stdin line ${lineNo}`;
    let message;
    try {
      message = JSON.parse(line);
    } catch (err) {
      fail(where, `invalid JSON (${err.message}): ${line.slice(0, 200)}`);
    }
    if (message === null || typeof message !== 'object') fail(where, 'expected a JSON object');
    switch (message.type) {
      case 'start': state.start(message, where); break;
      case 'task': state.task(message, where); break;
      case 'end': state.end(); break;
      default: fail(where, `unknown message type ${JSON.stringify(message.type)}`);
    }
  });
  input.on('close', () => {
    if (!state.client) fail('stdin', 'closed before "start"');
    state.end();
  });
}

main();
