#!/usr/bin/env node
// End-to-end test of `{ worker: true }` in Chromium: the package starts its own
// dedicated worker (pkg/worker.js), the download runs there into OPFS, and the
// page's Download is a proxy. A reload mid-download loses nothing: the next
// page's proxy resumes from what the worker stored, fetching only what is
// missing, and the result is the OPFS file itself.
//
//   BASE_URL=http://127.0.0.1:PORT ACCESS_LOG=DIR/logs/access.log \
//   SAMPLE=DIR/files/sample.bin FILE_PATH=/slow/sample.bin node tests/e2e/worker.mjs
//
// against `scripts/nginx.sh DIR PORT --background`. Exits 0 when every check
// passes, 1 otherwise.

import fs from 'node:fs/promises';
import {
  MiB, STEP_MS, check, fileRequests, fromEnv, launch, logger, mib, openDemo, run, secs, sha256File,
  tempDir,
} from './lib.mjs';

const CONNECTIONS = 3;
const BLOCK = 8 * MiB;
const INTERRUPT_AT = 0.4;
const DOWNLOAD_MS = 75_000;
const log = logger('e2e worker');

/** Opens the download with `{ worker: true }` in the page, as `globalThis.dl`. */
function openInWorker(page, fileUrl) {
  return page.evaluate(
    async ({ fileUrl, options }) => {
      const { default: init, Download } = await import('/pkg/resumable_fetch.js');
      await init();
      globalThis.Download = Download;
      globalThis.dl = await Download.open(fileUrl, options);
      globalThis.progress = [];
      globalThis.dl.onprogress = (p) => globalThis.progress.push(p.received);
      const { store, received, state, total } = globalThis.dl;
      return { store, received, state, total };
    },
    { fileUrl, options: { worker: true, connections: CONNECTIONS, blockSize: BLOCK } },
  );
}

/** Polls the proxy's `received` (updated by the worker's events) until `bytes`. */
async function waitForReceived(page, bytes) {
  const deadline = Date.now() + DOWNLOAD_MS;
  for (;;) {
    const { received, state } = await page.evaluate(() => ({
      received: globalThis.dl.received, state: globalThis.dl.state,
    }));
    if (received >= bytes) return received;
    check(state === 'running', `the download stopped in state ${state} at ${mib(received)}`);
    check(Date.now() < deadline, `received stayed at ${mib(received)} below ${mib(bytes)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main() {
  const { base, accessLog, sample, filePath, fileUrl, size } = await fromEnv();
  const expectedSha = await sha256File(sample);
  const profile = await tempDir('rf-e2e-worker-');
  const { page } = await launch(profile, { log });
  await openDemo(page, base);

  const first = await openInWorker(page, fileUrl);
  log(`opened in the worker: store ${first.store}, state ${first.state}`);
  check(first.store === 'opfs', `the worker stores in ${first.store}, not opfs`);
  check(first.received === 0, `a fresh profile already holds ${first.received} bytes`);
  await page.evaluate(() => { globalThis.run = globalThis.dl.start().catch((e) => e); });
  check(
    (await page.evaluate(() => globalThis.dl.state)) === 'running',
    'the proxy is not running at once after start()',
  );
  const shown = await waitForReceived(page, INTERRUPT_AT * size);
  const logOffset = (await fs.stat(accessLog)).size;
  await page.reload({ waitUntil: 'load' });
  const reloadedAt = Date.now() / 1000;
  await openDemo(page, base);

  const again = await openInWorker(page, fileUrl);
  const stored = again.received;
  log(`reloaded at ${mib(shown)} shown; the new proxy reports ${mib(stored)} stored, state ${again.state}`);
  check(again.store === 'opfs', `after the reload the store is ${again.store}`);
  check(stored > 0 && stored <= size, `nothing stored survived the reload (${stored})`);
  check(again.total === size, `total ${again.total}, expected ${size}`);
  const listed = await page.evaluate(async () =>
    (await globalThis.Download.list()).find((e) => e.id === globalThis.dl.id) ?? null);
  check(listed?.store === 'opfs' && listed.received === stored,
    `the page's Download.list() shows ${JSON.stringify(listed)}`);

  const began = Date.now();
  const outcome = await page.evaluate(async () => {
    const state = await globalThis.dl.start();
    const blob = await globalThis.dl.blob();
    const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
    const sha = Array.from(new Uint8Array(digest), (x) => x.toString(16).padStart(2, '0')).join('');
    const p = globalThis.progress;
    return {
      state, size: blob.size, isFile: blob instanceof File, sha, received: globalThis.dl.received,
      events: p.length, monotonic: p.every((x, i) => i === 0 || p[i - 1] <= x), last: p[p.length - 1],
    };
  });
  log(`resumed to ${outcome.state} in ${secs(Date.now() - began)}; ${outcome.events} progress events`);
  check(outcome.state === 'complete', `start() resolved ${outcome.state}`);
  check(outcome.received === size, `received ${outcome.received} of ${size}`);
  check(outcome.events > 0 && outcome.monotonic && outcome.last === size,
    'progress events reached the page in order, up to the size');
  check(outcome.isFile && outcome.size === size, `blob() is not the ${size}-byte OPFS file`);
  check(outcome.sha === expectedSha, `the blob's SHA-256 is ${outcome.sha}, expected ${expectedSha}`);

  const after = (await fileRequests(accessLog, filePath, logOffset)).filter((q) => q.time >= reloadedAt);
  const served = after.reduce((n, q) => n + q.sent, 0);
  const missing = size - stored;
  log(`after the reload: ${after.length} requests, ${mib(served)} served, ${mib(missing)} missing`);
  check(after.length > 0, 'the server logged no request after the reload');
  check(after.every((q) => q.status === 206 && q.start !== null && q.start > 0),
    `a request after the reload started at 0 or was not a range: ${after.map((q) => q.line).join('\n')}`);
  check(served >= missing && served <= missing + CONNECTIONS * BLOCK,
    `served ${served} after the reload, but ${missing} were missing (bound: plus one block per connection)`);
  log('passed');
}

run(main, { tag: 'e2e worker', budgetMs: 150_000 });
