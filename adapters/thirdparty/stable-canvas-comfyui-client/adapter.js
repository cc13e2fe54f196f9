#!/usr/bin/env node
'use strict';
// comfy-chaos subprocess adapter for the npm library @stable-canvas/comfyui-client (1.5.9).
//
// Usage: node adapters/thirdparty/stable-canvas-comfyui-client/adapter.js   (JSON lines on stdio)
// Install: npm ci --prefix adapters/thirdparty/stable-canvas-comfyui-client
//
// The glue its README shows for Node: `new Client({api_host, WebSocket})` with the `ws`
// package, `await client.connect()`, then per task `await client.enqueue(workflow,
// {resolver})` — "it includes the entire prompt interface life cycle and waits for and
// collectively returns the result at the end of the request". The documented `resolver`
// option receives each output; the adapter's resolver keeps it under its node id (the
// default resolver turns images into /view URLs, which the scorer cannot compare).
// What the library cannot express is in docs/adapters-thirdparty.md.

const path = require('node:path');
const { protectStdout, run, describeError, packageVersion } = require('../jsonlines_driver.js');

protectStdout();

const LIBRARY = '@stable-canvas/comfyui-client';
let Client;
let WebSocket;
try {
  ({ Client } = require(LIBRARY));
  WebSocket = require('ws');
} catch (err) {
  process.stderr.write(
    `${path.basename(__filename)}: ${LIBRARY} is not installed (${err.message}); ` +
      'install it with: npm ci --prefix adapters/thirdparty/stable-canvas-comfyui-client\n',
  );
  process.exit(2);
}

const counters = { resolved: 0, rejected: 0, connected: 0, reconnecting: 0, reconnected: 0, connection_error: 0 };

/** The documented resolver signature: (acc, output, {client, prompt_id, node_id}) → acc. */
function keepByNode(acc, output, { node_id: nodeId }) {
  return { ...acc, data: { ...(acc.data || {}), [nodeId]: output } };
}

const adapter = {
  name: 'stable-canvas-comfyui-client',
  version: packageVersion(LIBRARY, __dirname),
  // enqueue() reveals the prompt id only with its result; interrupts are not handled.
  caps: ['outputs'],
  client: null,

  async open(start) {
    this.client = new Client({ api_host: new URL(start.baseUrl).host, WebSocket });
    this.client.on('connected', () => { counters.connected += 1; });
    this.client.on('reconnecting', () => { counters.reconnecting += 1; });
    this.client.on('reconnected', () => { counters.reconnected += 1; });
    this.client.on('connection_error', () => { counters.connection_error += 1; });
    await this.client.connect();
  },

  async runTask(workflow) {
    let output;
    try {
      output = await this.client.enqueue(workflow, { resolver: keepByNode });
    } catch (err) {
      counters.rejected += 1;
      // A WorkflowExecutionError names the prompt the library failed (`task_id`).
      return { outcome: 'error', outputs: null, detail: describeError(err), promptId: err.task_id || null };
    }
    counters.resolved += 1;
    return { outcome: 'success', outputs: output.data || {}, promptId: output.prompt_id };
  },

  counters() {
    return { ...counters };
  },
};

run(adapter);
