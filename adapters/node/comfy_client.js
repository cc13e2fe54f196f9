'use strict';
// A straightforward ComfyUI client, the way a typical JS integration is written:
// one WebSocket with a clientId, POST /prompt, wait for `executing` with node null
// for that prompt_id, then GET /history/{prompt_id} for outputs and status.
//
// Deliberately NOT a reliability champion (see docs/adapters-thirdparty.md):
// no reconnect of a socket that dropped while prompts were running (those prompts
// fail with "websocket closed"), no heartbeat, no HTTP polling fallback, no retry
// of POST /prompt or GET /history.

const crypto = require('node:crypto');

/** `ws` if installed, else the global WebSocket (Node >= 22); loaded on first connect. */
function loadWebSocket() {
  try {
    return require('ws');
  } catch (err) {
    if (typeof globalThis.WebSocket === 'function') return globalThis.WebSocket;
    throw new Error(
      `no WebSocket implementation: run "npm ci" in adapters/node (${err.message})`,
    );
  }
}

const WS_OPEN = 1; // readyState OPEN, the same for `ws` and the WHATWG WebSocket

/** Turn an http(s) base URL into the ws(s) URL of ComfyUI's socket for clientId. */
function wsUrlFor(baseUrl, clientId) {
  const url = new URL(baseUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/ws`;
  url.search = `?clientId=${encodeURIComponent(clientId)}`;
  return url.toString();
}

/** Outcome and detail of a finished prompt from its /history entry and any WS error. */
function outcomeFromHistory(entry, wsError) {
  const status = entry.status || {};
  if (status.status_str === 'success') return { outcome: 'success', detail: null };
  const messages = Array.isArray(status.messages) ? status.messages : [];
  const last = messages.length ? messages[messages.length - 1] : null;
  if (last && last[0] === 'execution_interrupted') {
    return { outcome: 'interrupted', detail: `interrupted at node ${last[1].node_id}` };
  }
  const error = wsError || (last && last[0] === 'execution_error' ? last[1] : null);
  if (error) {
    return {
      outcome: 'error',
      detail: `${error.exception_type} at node ${error.node_id}: ${error.exception_message}`,
    };
  }
  return { outcome: 'error', detail: `history status_str=${status.status_str}` };
}

class ComfyClient {
  /**
   * @param {string} baseUrl  e.g. "http://127.0.0.1:8188"
   * @param {{requestTimeoutMs: number, onNote: (text: string) => void}} options
   */
  constructor(baseUrl, { requestTimeoutMs, onNote }) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.clientId = crypto.randomUUID();
    this.requestTimeoutMs = requestTimeoutMs;
    this.onNote = onNote;
    this.ws = null;
    this.opening = null;
    // prompt_id -> {resolve, reject, wsError}
    this.waiters = new Map();
    // Signals that arrived before POST /prompt returned (fast prompts): prompt_id -> wsError|null
    this.earlyFinished = new Map();
    this.earlyErrors = new Map();
    this.stats = { frames: 0, binaryFrames: 0, badFrames: 0, connects: 0 };
  }

  async connect() {
    if (this.ws && this.ws.readyState === WS_OPEN) return;
    if (!this.opening) this.opening = this.openSocket().finally(() => { this.opening = null; });
    await this.opening;
  }

  openSocket() {
    const WebSocketImpl = loadWebSocket();
    return new Promise((resolve, reject) => {
      const ws = new WebSocketImpl(wsUrlFor(this.baseUrl, this.clientId));
      ws.binaryType = 'arraybuffer';
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error(`websocket connect timed out after ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        this.ws = ws;
        this.stats.connects += 1;
        resolve();
      };
      ws.onerror = (event) => {
        clearTimeout(timer);
        reject(new Error(`websocket error: ${event.message || event.error || 'connect failed'}`));
      };
      ws.onmessage = (event) => this.onFrame(event.data);
      ws.onclose = (event) => {
        clearTimeout(timer);
        if (this.ws === ws) this.ws = null;
        this.failAll(new Error(`websocket closed (code ${event.code})`));
        reject(new Error(`websocket closed before open (code ${event.code})`));
      };
    });
  }

  close() {
    if (this.ws) this.ws.close();
  }

  failAll(err) {
    for (const waiter of this.waiters.values()) waiter.reject(err);
    this.waiters.clear();
  }

  onFrame(data) {
    this.stats.frames += 1;
    if (typeof data !== 'string') {
      this.stats.binaryFrames += 1;
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch (err) {
      this.stats.badFrames += 1;
      if (this.stats.badFrames === 1) this.onNote(`ignoring unparseable frame: ${err.message}`);
      return;
    }
    const payload = (message && message.data) || {};
    const promptId = payload.prompt_id;
    if (message.type === 'execution_error' && promptId) {
      const waiter = this.waiters.get(promptId);
      if (waiter) waiter.wsError = payload;
      else this.earlyErrors.set(promptId, payload);
    } else if (message.type === 'executing' && payload.node === null && promptId) {
      const waiter = this.waiters.get(promptId);
      if (waiter) {
        this.waiters.delete(promptId);
        waiter.resolve(waiter.wsError);
      } else {
        this.earlyFinished.set(promptId, this.earlyErrors.get(promptId) || null);
      }
    }
  }

  async request(method, path, body) {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.requestTimeoutMs),
    });
    const text = await response.text();
    if (response.status !== 200) {
      throw new Error(`${method} ${path} -> HTTP ${response.status}: ${text.slice(0, 300)}`);
    }
    return JSON.parse(text);
  }

  waitFinished(promptId) {
    if (this.earlyFinished.has(promptId)) {
      const wsError = this.earlyFinished.get(promptId);
      this.earlyFinished.delete(promptId);
      this.earlyErrors.delete(promptId);
      return Promise.resolve(wsError);
    }
    return new Promise((resolve, reject) => {
      this.waiters.set(promptId, {
        resolve, reject, wsError: this.earlyErrors.get(promptId) || null,
      });
      this.earlyErrors.delete(promptId);
    });
  }

  /**
   * Submit a workflow and wait until ComfyUI says it finished.
   * @param {object} workflow  API-format graph
   * @param {(promptId: string) => void} onSubmitted
   * @returns {Promise<{promptId: string, outcome: string, outputs: object, detail: string|null}>}
   */
  async run(workflow, onSubmitted) {
    await this.connect();
    const reply = await this.request('POST', '/prompt', { prompt: workflow, client_id: this.clientId });
    const promptId = reply.prompt_id;
    onSubmitted(promptId);
    try {
      const wsError = await this.waitFinished(promptId);
      const history = await this.request('GET', `/history/${encodeURIComponent(promptId)}`);
      const entry = history[promptId];
      if (!entry) throw new Error(`history has no entry for ${promptId}`);
      const { outcome, detail } = outcomeFromHistory(entry, wsError);
      return { promptId, outcome, outputs: entry.outputs || {}, detail };
    } catch (err) {
      err.promptId = promptId;
      throw err;
    }
  }
}

module.exports = { ComfyClient, wsUrlFor, outcomeFromHistory };
