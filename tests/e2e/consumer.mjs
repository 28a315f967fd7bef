#!/usr/bin/env node
// The package as an ordinary npm dependency: tests/consumer, installed from
// the `npm pack` tarball of pkg/ and built by Vite (which must find and bundle
// the package's worker and wasm), completes downloads in headless Chromium:
// on the page (IndexedDB) and with `{ worker: true }` (OPFS in the worker).
//
//   BASE_URL=http://127.0.0.1:PORT SAMPLE=DIR/files/sample.bin FILE_PATH=/files/sample.bin \
//   ACCESS_LOG=DIR/logs/access.log APP_PATH=/files/consumer/index.html node tests/e2e/consumer.mjs
//
// against `scripts/nginx.sh DIR PORT --background`, with the Vite build in
// DIR/files/consumer. Exits 0 when every check passes, 1 otherwise.

import { STEP_MS, check, fail, fromEnv, launch, logger, run, secs, sha256File, tempDir } from './lib.mjs';

const DOWNLOAD_MS = 60_000;
const log = logger('e2e consumer');

async function main() {
  const { base, sample, fileUrl, size } = await fromEnv();
  const appPath = process.env.APP_PATH || fail('APP_PATH is not set (the Vite build, e.g. /files/consumer/index.html)');
  const expectedSha = await sha256File(sample);
  const { page } = await launch(await tempDir('rf-e2e-consumer-'), { log });
  await page.goto(new URL(appPath, base).href, { waitUntil: 'load', timeout: STEP_MS });
  await page.waitForSelector('html[data-ready="true"]', { timeout: STEP_MS });

  for (const [options, store] of [[{}, 'indexeddb'], [{ worker: true }, 'opfs']]) {
    const began = Date.now();
    const result = await page.evaluate(
      ({ url, options, ms }) => Promise.race([
        window.download(url, options).catch((e) => ({ error: `${e.name} ${e.code}: ${e.message}` })),
        new Promise((resolve) => setTimeout(() => resolve({ error: `not done within ${ms} ms` }), ms)),
      ]),
      { url: fileUrl, options, ms: DOWNLOAD_MS },
    );
    const label = JSON.stringify(options);
    log(`${label}: ${JSON.stringify(result)} in ${secs(Date.now() - began)}`);
    check(!result.error, `${label}: ${result.error}`);
    check(result.state === 'complete', `${label}: start() resolved ${result.state}`);
    check(result.store === store, `${label}: stored in ${result.store}, expected ${store}`);
    check(result.received === size && result.size === size, `${label}: ${result.size} bytes of ${size}`);
    check(result.sha256 === expectedSha, `${label}: SHA-256 ${result.sha256}, expected ${expectedSha}`);
  }
  log('passed');
}

run(main, { tag: 'e2e consumer', budgetMs: 150_000 });
