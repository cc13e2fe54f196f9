#!/usr/bin/env node
'use strict';
// comfy-chaos subprocess adapter for the npm library @saintno/comfyui-sdk (0.3.1).
//
// Usage: node adapters/thirdparty/saintno-comfyui-sdk/adapter.js   (JSON lines on stdio)
// Install: npm ci --prefix adapters/thirdparty/saintno-comfyui-sdk
//
// The glue its README shows: one `new ComfyApi(host).init()` per client (awaited with
// `waitForReady()`), and per task `new CallWrapper(api, new PromptBuilder(workflow, [],
// outputKeys)).onPending(...).onFailed(...).run()`. The SDK only reports the outputs of the
// nodes declared with `setOutputNode`; a user who runs arbitrary API workflows declares
// every output node, found with the SDK's own `api.getNodeDefs()` (GET /object_info),
// under its node id. `run()` resolves to the outputs (success) or `false` (failure; the
// reason comes through `onFailed`). What the library cannot express is in
// docs/adapters-thirdparty.md.

const path = require('node:path');
const { protectStdout, run, describeError, outputNodeIds, packageVersion } = require('../jsonlines_driver.js');

protectStdout();

const LIBRARY = '@saintno/comfyui-sdk';
let sdk;
try {
  sdk = require(LIBRARY);
} catch (err) {
  process.stderr.write(
    `${path.basename(__filename)}: ${LIBRARY} is not installed (${err.message}); ` +
      'install it with: npm ci --prefix adapters/thirdparty/saintno-comfyui-sdk\n',
  );
  process.exit(2);
}
const { ComfyApi, CallWrapper, PromptBuilder } = sdk;
const version = packageVersion(LIBRARY, __dirname);

const counters = {
  finished: 0,
  finished_callbacks: 0,
  failed: 0,
  failed_callbacks: 0,
  resolved_false: 0,
  resolved_undefined: 0,
  disconnected: 0,
  reconnected: 0,
  reconnection_failed: 0,
  status_frames: 0,
};

const adapter = {
  name: 'saintno-comfyui-sdk',
  version,
  // prompt ids arrive through onPending; interrupts are an `ExecutionInterruptedError`
  // through onFailed, which the adapter maps to `interrupted`.
  caps: ['submitted', 'outputs', 'interrupted'],
  api: null,
  objectInfo: null,

  async open(start) {
    this.api = new ComfyApi(start.baseUrl);
    this.api.on('disconnected', () => { counters.disconnected += 1; });
    this.api.on('reconnected', () => { counters.reconnected += 1; });
    this.api.on('reconnection_failed', () => { counters.reconnection_failed += 1; });
    this.api.on('status', () => { counters.status_frames += 1; });
    await this.api.init().waitForReady();
  },

  async runTask(workflow, ctx) {
    if (this.objectInfo === null) {
      this.objectInfo = (await this.api.getNodeDefs()) || {};
    }
    const outputs = outputNodeIds(workflow, this.objectInfo);
    let builder = new PromptBuilder(workflow, [], outputs);
    for (const id of outputs) builder = builder.setOutputNode(id, id);
    const failures = [];
    const result = await new CallWrapper(this.api, builder)
      .onPending((promptId) => ctx.submitted(promptId))
      .onFinished(() => { counters.finished_callbacks += 1; })
      .onFailed((err, promptId) => {
        counters.failed_callbacks += 1;
        failures.push(err);
        if (promptId) ctx.submitted(promptId);
        ctx.note(`onFailed: ${describeError(err)}`);
      })
      .run();
    if (result) {
      counters.finished += 1;
      const reported = {};
      for (const id of outputs) {
        if (result[id] !== undefined && result[id] !== null) reported[id] = result[id];
      }
      return { outcome: 'success', outputs: reported };
    }
    counters.failed += 1;
    if (result === false) counters.resolved_false += 1;
    else counters.resolved_undefined += 1;
    // onFailed can fire more than once for one job (an interrupt, then "went missing" from
    // a status frame handled concurrently); the first call is the one that ended run().
    const first = failures[0];
    const interrupted = first && first.name === 'ExecutionInterruptedError';
    return {
      outcome: interrupted ? 'interrupted' : 'error',
      outputs: null,
      detail: first ? describeError(first) : `CallWrapper.run() resolved to ${String(result)} without an onFailed reason`,
    };
  },

  counters() {
    return { ...counters };
  },
};

run(adapter);
