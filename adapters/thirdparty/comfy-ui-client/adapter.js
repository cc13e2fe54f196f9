#!/usr/bin/env node
'use strict';
// comfy-chaos subprocess adapter for the npm library comfy-ui-client (0.1.2).
//
// Usage: node adapters/thirdparty/comfy-ui-client/adapter.js   (JSON lines on stdio)
// Install: npm ci --prefix adapters/thirdparty/comfy-ui-client
//
// The glue its README shows: `new ComfyUIClient(host, clientId)`, `await client.connect()`,
// then per task `await client.getImages(prompt)`, which resolves to
// `{nodeId: [{blob, image: {filename, subfolder, type}}]}` (it downloads every image with
// GET /view). The adapter reports `image` of every entry under its node id. The library
// logs with pino to stdout; the driver's protectStdout() sends that to stderr.
// What the library cannot express is in docs/adapters-thirdparty.md.

const crypto = require('node:crypto');
const path = require('node:path');
const { protectStdout, run, packageVersion } = require('../jsonlines_driver.js');

protectStdout();

const LIBRARY = 'comfy-ui-client';
let ComfyUIClient;
try {
  ({ ComfyUIClient } = require(LIBRARY));
} catch (err) {
  process.stderr.write(
    `${path.basename(__filename)}: ${LIBRARY} is not installed (${err.message}); ` +
      'install it with: npm ci --prefix adapters/thirdparty/comfy-ui-client\n',
  );
  process.exit(2);
}

const counters = { resolved: 0, rejected: 0, images: 0 };

const adapter = {
  name: 'comfy-ui-client',
  version: packageVersion(LIBRARY, __dirname),
  // getImages() never tells the caller its prompt id, an error or an interrupt.
  caps: ['outputs'],
  client: null,

  async open(start) {
    this.client = new ComfyUIClient(new URL(start.baseUrl).host, crypto.randomUUID());
    await this.client.connect();
  },

  async runTask(workflow) {
    let images;
    try {
      images = await this.client.getImages(workflow);
    } catch (err) {
      counters.rejected += 1;
      throw err;
    }
    counters.resolved += 1;
    const outputs = {};
    for (const [nodeId, entries] of Object.entries(images)) {
      outputs[nodeId] = { images: entries.map((entry) => entry.image) };
      counters.images += entries.length;
    }
    return { outcome: 'success', outputs };
  },

  counters() {
    return { ...counters };
  },
};

run(adapter);
