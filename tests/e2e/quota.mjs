#!/usr/bin/env node
// End-to-end test of quota exhaustion in Chromium: with the origin's quota
// overridden to QUOTA through the DevTools protocol, a download of a larger
// file into IndexedDB fails with QUOTA_EXCEEDED, is left paused and keeps
// every block it stored; once the quota is raised, start() on the same
// Download continues from there (the server is asked only for the missing
// bytes) and the blob equals the file.
//
//   BASE_URL=http://127.0.0.1:PORT ACCESS_LOG=DIR/logs/access.log \
//   SAMPLE=DIR/files/sample.bin FILE_PATH=/files/sample.bin node tests/e2e/quota.mjs
//
// against `scripts/nginx.sh DIR PORT --background` (see tests/e2e/lib.mjs for
// the access log's format). Exits 0 when every check passes, 1 otherwise.
//
// Measured in headless Chromium 156: `Storage.overrideQuotaForOrigin` is
// enforced (IndexedDB writes beyond it fail with QuotaExceededError, and
// `Storage.getUsageAndQuota` reports the override with `overrideActive`), but
// `navigator.storage.estimate()` ignores it: with the StaticStorageQuota
// feature on (the default) it reports `usage + 10 GiB` whatever the real
// quota. Launched with `--disable-features=StaticStorageQuota` it reports the
// overridden quota exactly, so the test does that and checks both views.

import fs from 'node:fs/promises';
import {
  Failure, MiB, STEP_MS, check, closeContext, fail, fileRequests, fromEnv, launch, logger, mib, openDemo, run, secs,
  sha256File, tempDir,
} from './lib.mjs';

const TAG = 'e2e quota';
const CONNECTIONS = 3;
const BLOCK_MIB = 4;
const BLOCK = BLOCK_MIB * MiB;
/** The small quota the download runs into, then the raised one. */
const QUOTA = 48 * MiB;
const RAISED_QUOTA = 1024 * MiB;
/**
 * How far past the quota the origin's usage may go. Chromium checks each
 * transaction against the usage before it commits; pieces are written in
 * transactions at once (one per lane), so each of those in flight may pass
 * the check: at most one block per connection. Measured: 4 MiB over.
 */
const IN_FLIGHT = CONNECTIONS * BLOCK;
/** The whole script, browser launch and hashing included. */
const SCRIPT_BUDGET_MS = 120_000;
const DOWNLOAD_MS = 60_000;

const log = logger(TAG);

/** `promise`, or a failure naming `what` after `ms` (page.evaluate has no timeout of its own). */
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`${what} did not finish within ${secs(ms)}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---- the page -----------------------------------------------------------------

/** What the page and the browser say about the origin's storage. */
async function quotaViews(page, cdp, origin) {
  const estimate = await within(STEP_MS, 'navigator.storage.estimate()', page.evaluate(async () => {
    const e = await navigator.storage.estimate();
    return { quota: e.quota, usage: e.usage };
  }));
  const browser = await within(STEP_MS, 'Storage.getUsageAndQuota',
    cdp.send('Storage.getUsageAndQuota', { origin }));
  return { estimate, browser };
}

async function setQuota(page, cdp, origin, quotaSize) {
  await within(STEP_MS, 'Storage.overrideQuotaForOrigin',
    cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize }));
  const views = await quotaViews(page, cdp, origin);
  check(
    views.browser.overrideActive === true && views.browser.quota === quotaSize,
    `Storage.overrideQuotaForOrigin(${quotaSize}) did not take: Storage.getUsageAndQuota says ` +
      `quota ${views.browser.quota}, overrideActive ${views.browser.overrideActive}`,
  );
  check(
    views.estimate.quota === quotaSize,
    `navigator.storage.estimate() reports quota ${views.estimate.quota} after the override to ${quotaSize} ` +
      '(is --disable-features=StaticStorageQuota still honoured?)',
  );
  return views;
}

/**
 * Opens the download in the page (kept as globalThis.__quotaDl) and runs
 * start(): what it settled with, what the Download and Download.list() say.
 */
function pageStart(page, fileUrl, options) {
  return page.evaluate(
    async ({ fileUrl, options }) => {
      const { default: init, Download } = await import('/pkg/resumable_fetch.js');
      await init();
      if (!globalThis.__quotaDl) {
        globalThis.__quotaListBefore = await Download.list();
        globalThis.__quotaDl = await Download.open(fileUrl, options);
        globalThis.__quotaRestarts = [];
        globalThis.__quotaDl.onrestart = (r) => globalThis.__quotaRestarts.push(r);
      }
      const dl = globalThis.__quotaDl;
      const receivedBefore = dl.received;
      let result = null;
      let error = null;
      try {
        result = await dl.start();
      } catch (e) {
        error = {
          isError: e instanceof Error,
          name: e && e.name,
          code: e && e.code,
          message: e && e.message,
        };
      }
      const list = await Download.list();
      return {
        listBefore: globalThis.__quotaListBefore,
        receivedBefore,
        result,
        error,
        state: dl.state,
        received: dl.received,
        total: dl.total,
        store: dl.store,
        restarts: globalThis.__quotaRestarts.slice(),
        entry: list.find((e) => e.id === dl.id) ?? null,
        entries: list.length,
      };
    },
    { fileUrl, options },
  );
}

/**
 * SHA-256 of the completed download's blob, computed in the page: slices of
 * `chunk` bytes read one at a time (memory stays bounded) and fed to an
 * incremental SHA-256 (crypto.subtle has none), which first proves itself
 * against crypto.subtle on a few lengths.
 */
function pageBlobSha256(page, chunk) {
  return page.evaluate(async (chunk) => {
    const primes = [];
    for (let n = 2; primes.length < 64; n += 1) if (primes.every((p) => n % p !== 0)) primes.push(n);
    const frac = (x) => Math.floor((x - Math.floor(x)) * 2 ** 32) >>> 0;
    const K = Uint32Array.from(primes, (p) => frac(Math.cbrt(p)));
    const H0 = Uint32Array.from(primes.slice(0, 8), (p) => frac(Math.sqrt(p)));

    function hasher() {
      const H = H0.slice();
      const W = new Uint32Array(64);
      const tail = new Uint8Array(64);
      let tailLength = 0;
      let length = 0;
      function blocks(bytes, from, to) {
        const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let p = from; p + 64 <= to; p += 64) {
          for (let i = 0; i < 16; i += 1) W[i] = v.getUint32(p + 4 * i);
          for (let i = 16; i < 64; i += 1) {
            const x = W[i - 15];
            const y = W[i - 2];
            const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
            const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
            W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
          }
          let a = H[0] | 0, b = H[1] | 0, c = H[2] | 0, d = H[3] | 0;
          let e = H[4] | 0, f = H[5] | 0, g = H[6] | 0, h = H[7] | 0;
          for (let i = 0; i < 64; i += 1) {
            const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
            const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
            const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
            const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
            h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
          }
          H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
        }
      }
      return {
        update(bytes) {
          length += bytes.length;
          let i = 0;
          if (tailLength > 0) {
            i = Math.min(64 - tailLength, bytes.length);
            tail.set(bytes.subarray(0, i), tailLength);
            tailLength += i;
            if (tailLength < 64) return;
            blocks(tail, 0, 64);
            tailLength = 0;
          }
          const whole = i + Math.floor((bytes.length - i) / 64) * 64;
          blocks(bytes, i, whole);
          tail.set(bytes.subarray(whole), 0);
          tailLength = bytes.length - whole;
        },
        hex() {
          const pad = new Uint8Array(((tailLength + 8) >> 6) * 64 + 64 - tailLength);
          pad[0] = 0x80;
          const v = new DataView(pad.buffer);
          v.setUint32(pad.length - 8, Math.floor(length / 2 ** 29));
          v.setUint32(pad.length - 4, (length % 2 ** 29) * 8);
          this.update(pad);
          return Array.from(H, (x) => x.toString(16).padStart(8, '0')).join('');
        },
      };
    }

    const hex = (buf) => Array.from(new Uint8Array(buf), (x) => x.toString(16).padStart(2, '0')).join('');
    const probe = crypto.getRandomValues(new Uint8Array(1000));
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 1000]) {
      const h = hasher();
      h.update(probe.subarray(0, Math.floor(n / 3)));
      h.update(probe.subarray(Math.floor(n / 3), n));
      const expected = hex(await crypto.subtle.digest('SHA-256', probe.subarray(0, n)));
      const got = h.hex();
      if (got !== expected) return { selfTestFailed: `length ${n}: ${got}, crypto.subtle says ${expected}` };
    }

    const blob = await globalThis.__quotaDl.blob();
    const h = hasher();
    for (let at = 0; at < blob.size; at += chunk) {
      h.update(new Uint8Array(await blob.slice(at, at + chunk).arrayBuffer()));
    }
    return { size: blob.size, sha: h.hex() };
  }, chunk);
}

// ---- the scenario ---------------------------------------------------------------

async function main() {
  const began = Date.now();
  const { base, accessLog, sample, filePath, fileUrl, size } = await fromEnv();
  check(size > 2 * QUOTA, `the sample (${size} bytes) should be well over the ${mib(QUOTA)} quota`);
  check(size < RAISED_QUOTA / 2, `the sample (${size} bytes) should fit well within the raised quota`);
  await fs.access(accessLog).catch(() => fail(`ACCESS_LOG ${accessLog} cannot be read`));
  const sha = await sha256File(sample);
  log(`${fileUrl}: ${mib(size)}, SHA-256 ${sha.slice(0, 16)}…; ${CONNECTIONS} connections, ` +
    `${BLOCK_MIB} MiB blocks; quota ${mib(QUOTA)}, then ${mib(RAISED_QUOTA)}`);

  const profile = await tempDir('rf-e2e-quota-');
  const { context, page } = await launch(profile, {
    log,
    // Otherwise navigator.storage.estimate() reports usage + 10 GiB, not the quota.
    args: ['--disable-features=StaticStorageQuota'],
  });
  await openDemo(page, base);
  const origin = await page.evaluate(() => location.origin);
  const cdp = await context.newCDPSession(page);

  // 1. The small quota, seen by the browser and by the page.
  const unset = await quotaViews(page, cdp, origin);
  log(`before the override: estimate() quota ${unset.estimate.quota} usage ${unset.estimate.usage}; ` +
    `Storage.getUsageAndQuota quota ${unset.browser.quota} (override ${unset.browser.overrideActive})`);
  const small = await setQuota(page, cdp, origin, QUOTA);
  log(`override to ${QUOTA}: estimate() quota ${small.estimate.quota} usage ${small.estimate.usage}; ` +
    `Storage.getUsageAndQuota quota ${small.browser.quota} (override ${small.browser.overrideActive})`);

  // 2. The download runs into it.
  const options = { store: 'indexeddb', connections: CONNECTIONS, blockSize: BLOCK };
  const logOffset = (await fs.stat(accessLog)).size;
  const first = await within(DOWNLOAD_MS, 'the first start()', pageStart(page, fileUrl, options));
  check(first.listBefore.length === 0, `a fresh profile should list no stored download, it lists ${first.listBefore.length}`);
  check(first.store === 'indexeddb', `the download should use IndexedDB, it uses ${first.store}`);
  check(
    first.error !== null,
    `start() should reject with QUOTA_EXCEEDED under a ${mib(QUOTA)} quota, it resolved ${JSON.stringify(first.result)}`,
  );
  check(
    first.error.isError && first.error.name === 'DownloadError' && first.error.code === 'QUOTA_EXCEEDED',
    `start() rejected with ${first.error.name} ${first.error.code}: ${first.error.message}; ` +
      'a DownloadError with code QUOTA_EXCEEDED was expected',
  );
  check(first.state === 'paused', `after QUOTA_EXCEEDED the download is ${first.state}, expected paused`);
  check(first.total === size, `the download says the file has ${first.total} bytes, the sample has ${size}`);
  check(first.entry !== null, `Download.list() does not show the download after QUOTA_EXCEEDED (${first.entries} entries)`);
  const stored = first.entry.received;
  check(first.entry.state === 'partial', `Download.list() shows the download as ${first.entry.state}, expected partial`);
  check(first.entry.total === size, `Download.list() says the file has ${first.entry.total} bytes, expected ${size}`);
  check(stored > 0, 'Download.list() shows 0 bytes stored after QUOTA_EXCEEDED: the stored blocks were lost');
  check(
    stored <= QUOTA + IN_FLIGHT,
    `Download.list() claims ${stored} bytes stored, more than the ${QUOTA}-byte quota and the blocks in flight`,
  );
  check(
    first.received === stored,
    `the Download says ${first.received} bytes received, Download.list() ${stored}`,
  );
  const full = await quotaViews(page, cdp, origin);
  check(
    full.browser.usage <= QUOTA + IN_FLIGHT,
    `the origin uses ${full.browser.usage} bytes, over its ${QUOTA}-byte quota and the blocks in flight`,
  );
  check(
    stored <= full.browser.usage,
    `Download.list() claims ${stored} bytes stored, but the origin uses only ${full.browser.usage}`,
  );
  // nginx logs a request when it ends: wait (bounded) until what was stored was sent.
  let before = [];
  for (const deadline = Date.now() + 5_000; ;) {
    before = await fileRequests(accessLog, filePath, logOffset);
    if (before.reduce((n, q) => n + q.sent, 0) >= stored || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const servedBefore = before.reduce((n, q) => n + q.sent, 0);
  check(
    servedBefore >= stored,
    `Download.list() claims ${stored} bytes stored, but the server had sent only ${servedBefore}`,
  );
  log(`QUOTA_EXCEEDED: "${first.error.message}"`);
  log(`stored at QUOTA_EXCEEDED ${mib(stored)} (${stored} B, ${(stored / BLOCK).toFixed(2)} blocks); origin usage ` +
    `${full.browser.usage} B (estimate() ${full.estimate.usage} B); the server had sent ` +
    `${mib(servedBefore)} in ${before.length} requests (${mib(servedBefore - stored)} not stored)`);

  // 3. The quota is raised: start() on the same Download continues.
  const raised = await setQuota(page, cdp, origin, RAISED_QUOTA);
  log(`override to ${RAISED_QUOTA}: estimate() quota ${raised.estimate.quota} usage ${raised.estimate.usage}`);
  const raisedAt = Date.now();
  const second = await within(DOWNLOAD_MS, 'the second start()', pageStart(page, fileUrl, options));
  const resumeMs = Date.now() - raisedAt;
  check(
    second.receivedBefore === stored,
    `before the second start() the Download counts ${second.receivedBefore} bytes, ${stored} were stored`,
  );
  check(
    second.error === null,
    `start() after raising the quota rejected with ${second.error?.code}: ${second.error?.message}`,
  );
  check(second.result === 'complete', `start() after raising the quota resolved ${second.result}, expected complete`);
  check(second.state === 'complete', `the download is ${second.state} after start() resolved, expected complete`);
  check(second.restarts.length === 0, `the download started over: ${JSON.stringify(second.restarts)}`);
  check(second.entry !== null, 'Download.list() does not show the completed download');
  check(
    second.entry.state === 'complete' && second.entry.received === size,
    `Download.list() shows ${second.entry.state} with ${second.entry.received} of ${size} bytes, expected complete`,
  );

  // 4. It resumed: every request after the raise starts past byte 0 and
  // carries only missing bytes.
  const requests = await fileRequests(accessLog, filePath, logOffset);
  const after = requests.filter((q) => q.time >= raisedAt / 1000);
  check(after.length > 0, 'the server logged no request for the file after the quota was raised');
  for (const q of after) {
    check(q.status === 206, `a request after the raise got ${q.status}: ${q.line}`);
    check(q.start !== null && q.start > 0, `a request after the raise does not start past byte 0: ${q.line}`);
  }
  const servedAfter = after.reduce((n, q) => n + q.sent, 0);
  const lowestStart = Math.min(...after.map((q) => q.start));
  check(
    servedAfter === size - stored,
    `requests after the raise carried ${servedAfter} bytes; exactly the ${size - stored} missing ones were expected`,
  );
  // What was fetched but not stored when the quota ran out is at most one
  // block per connection (the ones in flight), as after a reload.
  const servedAll = requests.reduce((n, q) => n + q.sent, 0);
  const again = servedAll - size;
  check(
    again <= CONNECTIONS * BLOCK,
    `${again} bytes were fetched twice, more than one block per connection (${CONNECTIONS * BLOCK})`,
  );
  log(`after the raise: ${after.length} requests, the lowest from byte ${lowestStart}, carried ${mib(servedAfter)} ` +
    `(${servedAfter} B = total - stored); fetched twice in all ${mib(again)} (${again} B); ` +
    `resume to complete ${secs(resumeMs)}`);

  // 5. The blob is the file.
  const hashedAt = Date.now();
  const blob = await within(DOWNLOAD_MS, 'hashing the blob in the page', pageBlobSha256(page, 8 * MiB));
  check(!blob.selfTestFailed, `the in-page SHA-256 is wrong: ${blob.selfTestFailed}`);
  check(blob.size === size, `the blob has ${blob.size} bytes, the sample ${size}`);
  check(blob.sha === sha, `the blob's SHA-256 is ${blob.sha}, expected ${sha} (the sample's)`);
  log(`blob SHA-256 ${blob.sha.slice(0, 16)}… matches the sample (hashed in the page in ${secs(Date.now() - hashedAt)})`);

  await within(STEP_MS, 'clearing the override', cdp.send('Storage.overrideQuotaForOrigin', { origin }));
  await within(STEP_MS, 'closing the browser', closeContext(context));
  log(`passed in ${secs(Date.now() - began)}`);
}

await run(main, { tag: TAG, budgetMs: SCRIPT_BUDGET_MS });
