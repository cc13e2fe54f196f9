'use strict';
// Unit tests of comfy_client.js without a network: `node --test adapters/node/test/`.
// Frames and history entries are the ones recorded from a real ComfyUI in
// tests/data/comfyui-traces/ (see its README for what each file did).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ComfyClient, wsUrlFor, outcomeFromHistory } = require('../comfy_client');

const TRACES = path.resolve(__dirname, '../../../tests/data/comfyui-traces');

function readTrace(name) {
  return fs.readFileSync(path.join(TRACES, name), 'utf8')
    .split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
}

/** The first accepted prompt of a trace: its id, the WS text frames the client got, its history entry. */
function firstPrompt(name) {
  const events = readTrace(name);
  const post = events.find((e) => e.kind === 'http-response' && e.method === 'POST'
    && e.path === '/prompt' && e.status === 200);
  const promptId = post.body.prompt_id;
  const frames = events
    .filter((e) => e.dir === 'server->client' && e.kind === 'ws-text')
    .map((e) => e.text);
  const history = events.find((e) => e.kind === 'http-response'
    && e.path === `/history/${promptId}` && e.body && e.body[promptId]);
  return { promptId, frames, entry: history.body[promptId] };
}

function offlineClient() {
  const notes = [];
  const client = new ComfyClient('http://127.0.0.1:8188', {
    requestTimeoutMs: 1000,
    onNote: (text) => notes.push(text),
  });
  return { client, notes };
}

/** Feed a recorded prompt's frames and read its outcome as ComfyClient.run would. */
async function replay(name) {
  const { promptId, frames, entry } = firstPrompt(name);
  const { client } = offlineClient();
  const finished = client.waitFinished(promptId);
  for (const text of frames) client.onFrame(text);
  const wsError = await finished;
  return { ...outcomeFromHistory(entry, wsError), entry };
}

test('wsUrlFor maps the scheme, keeps a base path and encodes the clientId', () => {
  assert.equal(wsUrlFor('http://127.0.0.1:8188', 'abc'), 'ws://127.0.0.1:8188/ws?clientId=abc');
  assert.equal(wsUrlFor('https://h.example/comfy/', 'a b'), 'wss://h.example/comfy/ws?clientId=a%20b');
});

test('recorded success (02) finishes on executing null and reads success', async () => {
  const { outcome, detail } = await replay('02-success.jsonl');
  assert.equal(outcome, 'success');
  assert.equal(detail, null);
});

test('recorded runtime error (05) reports the exception type and node from the WS frame', async () => {
  const { outcome, detail, entry } = await replay('05-runtime-error.jsonl');
  assert.equal(outcome, 'error');
  const [, error] = entry.status.messages.at(-1);
  assert.ok(detail.startsWith(`${error.exception_type} at node ${error.node_id}:`), detail);
});

test('recorded error after a good output (05b) is an error that keeps history outputs', async () => {
  const { outcome, entry } = await replay('05b-error-after-good-output.jsonl');
  assert.equal(outcome, 'error');
  assert.ok(Object.keys(entry.outputs).length > 0);
});

test('recorded interrupt mid-node (06b) reads interrupted with the node', async () => {
  const { outcome, detail, entry } = await replay('06b-interrupt-mid-node.jsonl');
  assert.equal(outcome, 'interrupted');
  assert.ok(detail.includes(entry.status.messages.at(-1)[1].node_id), detail);
});

test('a finish that arrives before the POST reply is read is not missed', async () => {
  const { promptId, frames } = firstPrompt('05-runtime-error.jsonl');
  const { client } = offlineClient();
  for (const text of frames) client.onFrame(text);
  const wsError = await client.waitFinished(promptId);
  assert.equal(wsError.prompt_id, promptId);
  assert.equal(client.waiters.size, 0);
});

test('non-JSON and binary frames are counted, noted once, and do not finish anything', async () => {
  const { client, notes } = offlineClient();
  let settled = false;
  client.waitFinished('p1').then(() => { settled = true; });
  client.onFrame('\ufeff{"type": "executing", "data": {"node": null, "prompt_id": "p1"}}');
  client.onFrame('not json');
  client.onFrame(new ArrayBuffer(8));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, false);
  assert.deepEqual(
    { bad: client.stats.badFrames, binary: client.stats.binaryFrames, notes: notes.length },
    { bad: 2, binary: 1, notes: 1 },
  );
});

test('a closed socket fails every prompt still waiting', async () => {
  const { client } = offlineClient();
  const waiting = [client.waitFinished('p1'), client.waitFinished('p2')];
  client.failAll(new Error('websocket closed (code 1006)'));
  for (const promise of waiting) {
    await assert.rejects(promise, /websocket closed \(code 1006\)/);
  }
});
