#!/usr/bin/env node
// End-to-end test of the demo page in Chromium: a download interrupted by a
// page reload, one interrupted by closing the browser, and one reloaded while
// the server keeps dropping connections all resume from exactly what was
// stored, fetch only what is missing, and produce the file.
//
//   BASE_URL=http://127.0.0.1:PORT ACCESS_LOG=DIR/logs/access.log \
//   SAMPLE=DIR/files/sample.bin FILE_PATH=/slow/sample.bin \
//   FAULT_SERVER=http://127.0.0.1:PORT2 node tests/e2e/reload.mjs
//
// against `scripts/nginx.sh DIR PORT --background` and the fault server. The
// access log (format `$msec $request_time "$request" $status $body_bytes_sent
// "$http_range"`) and the fault server's request log tell what the servers
// really sent. Exits 0 when every check passes, 1 otherwise.

import fs from 'node:fs/promises';
import path from 'node:path';
import {
  MiB, STEP_MS, check, closeContext, fail, fileRequests, fromEnv, launch, logger, mib, openDemo,
  run, secs, sha256File, tempDir,
} from './lib.mjs';
import { configure, fileUrl as faultFileUrl, gets, sha256 } from '../fault-server/client.mjs';

const TAG = 'e2e';
const CONNECTIONS = 3;
const BLOCK_MIB = 8;
const BLOCK = BLOCK_MIB * MiB;
/** The interruption happens once the page shows this fraction received. */
const INTERRUPT_AT = 0.4;
/** The whole script, browser launches and hashing included. */
const SCRIPT_BUDGET_MS = 360_000;
const DOWNLOAD_MS = 90_000;
/** The fault server's file for the drops scenario: its size, and its pace per connection. */
const FAULT_FILE = 'e2e-drops.bin';
const FAULT_THROTTLE = 4 * MiB;
/** Before the reload and again after it, this many responses are cut off after DROP_AFTER bytes. */
const DROPS = 4;
const DROP_AFTER = 3 * MiB;

const log = logger(TAG);

// ---- the server's access log ------------------------------------------------

/** How many distinct bytes of the file these responses carried. */
function covered(requests) {
  const spans = requests
    .filter((q) => q.sent > 0 && (q.status === 206 || q.status === 200))
    .map((q) => [q.status === 200 ? 0 : q.start, (q.status === 200 ? 0 : q.start) + q.sent])
    .sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = -1;
  for (const [s, e] of spans) {
    if (e <= end) continue;
    total += e - Math.max(s, end < 0 ? s : end);
    end = e;
  }
  return total;
}

// ---- the page -----------------------------------------------------------------

const T = (id) => `[data-testid="${id}"]`;

async function statusOf(page) {
  return page.$eval(T('status'), (el) => ({
    state: el.dataset.state,
    received: Number(el.dataset.received),
    stored: Number(el.dataset.stored),
    total: el.dataset.total === '' ? undefined : Number(el.dataset.total),
    store: el.dataset.store,
  }));
}

async function shownError(page) {
  return page.$eval(T('error'), (el) => (el.hidden ? null : el.textContent.replace(/\s+/g, ' ').trim()));
}

async function restartNotice(page) {
  return page.$eval(T('notice'), (el) => (!el.hidden && el.dataset.kind === 'restart' ? el.textContent : null));
}

/**
 * Waits until the page shows `fraction` received while still running, or the
 * download ended. The page is still `idle` just after Start is clicked, until
 * the download has opened: that is not an end.
 */
async function waitForFraction(page, fraction) {
  await page
    .waitForFunction(
      (f) => {
        const el = document.querySelector('[data-testid="status"]');
        const total = Number(el.dataset.total);
        if (['paused', 'complete', 'failed'].includes(el.dataset.state)) return true;
        return el.dataset.state === 'running' && total > 0 && Number(el.dataset.received) >= f * total;
      },
      fraction,
      { timeout: DOWNLOAD_MS, polling: 50 },
    )
    .catch(() => fail(`the page did not reach ${fraction * 100} % within ${secs(DOWNLOAD_MS)}`));
  const s = await statusOf(page);
  check(
    s.state === 'running',
    `the download should still be running at ${fraction * 100} %, but the page says ${s.state}` +
      `${(await shownError(page)) ? ` (${await shownError(page)})` : ''}`,
  );
  check(
    s.received < s.total,
    `the page shows ${s.received} of ${s.total} bytes received at ${fraction * 100} %: ` +
      'the download completed before it could be interrupted; lower SLOW_RATE',
  );
  return s;
}

async function waitForComplete(page) {
  await page
    .waitForFunction(
      () => ['complete', 'failed'].includes(document.querySelector('[data-testid="status"]').dataset.state),
      null,
      { timeout: DOWNLOAD_MS, polling: 100 },
    )
    .catch(async () => {
      const s = await statusOf(page);
      fail(`the download did not complete within ${secs(DOWNLOAD_MS)} (state ${s.state}, ${s.received} bytes)`);
    });
  const s = await statusOf(page);
  check(s.state === 'complete', `the download failed: ${await shownError(page)}`);
  return s;
}

/** The partial download in the list after an interruption: what was stored. */
async function storedEntry(page, id, total) {
  const entry = page.locator(`${T('download-entry')}[data-id="${id}"]`);
  await entry.waitFor({ timeout: STEP_MS }).catch(async () => {
    const listed = await page.$$eval(T('download-entry'), (els) => els.map((el) => JSON.stringify(el.dataset)));
    const error = await shownError(page);
    fail(
      `the list does not show the partial download ${id}; it lists [${listed.join(', ')}]` +
        `${error ? `, and the page shows the error: ${error}` : ''}; status ${JSON.stringify(await statusOf(page))}`,
    );
  });
  const info = await entry.evaluate((el) => ({ ...el.dataset }));
  const stored = Number(info.received);
  check(info.state === 'partial', `the list shows the download as ${info.state}, expected partial`);
  check(stored > 0, `the list shows ${info.received} bytes stored: nothing survived the interruption`);
  check(stored < total, `the list claims ${stored} of ${total} bytes though the download was interrupted`);
  return { entry, stored };
}

/** What the list claims stored must have come from the server. */
async function checkStoredWasSent(accessLog, filePath, offset, stored) {
  // nginx logs an aborted request when it notices the closed connection.
  const deadline = Date.now() + 5_000;
  let sent = 0;
  for (;;) {
    sent = covered(await fileRequests(accessLog, filePath, offset));
    if (sent >= stored || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  check(
    stored <= sent,
    `the page claims ${stored} bytes stored, but the server had sent only ${sent} distinct bytes of the file`,
  );
  return sent;
}

/**
 * Clicks Save and checks the saved file. `via` 'picker': the page's
 * showSaveFilePicker is replaced by one that hands out a real file handle in
 * OPFS (Playwright cannot drive the native dialog), so save() streams into a
 * FileSystemWritableFileStream, and the page hashes the file. 'anchor': the
 * page has no picker, so save() falls back to `<a download>`, and the browser's
 * download is hashed from disk.
 */
async function saveAndHash(page, dir, expectedSha, expectedName, via, size) {
  if (via === 'anchor') {
    await page.evaluate(() => { delete Window.prototype.showSaveFilePicker; delete window.showSaveFilePicker; });
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: STEP_MS * 2 }),
      page.click(T('save')),
    ]);
    const file = path.join(dir, `saved-${Date.now()}.bin`);
    await download.saveAs(file);
    const failure = await download.failure();
    check(!failure, `the browser failed the save: ${failure}`);
    check(
      download.suggestedFilename() === expectedName,
      `saved as ${JSON.stringify(download.suggestedFilename())}, expected ${JSON.stringify(expectedName)}`,
    );
    const sha = await sha256File(file);
    await fs.rm(file, { force: true });
    check(sha === expectedSha, `the saved file's SHA-256 is ${sha}, expected ${expectedSha} (the sample's)`);
    return sha;
  }
  await page.evaluate(() => {
    window.__picked = null;
    window.showSaveFilePicker = async ({ suggestedName }) => {
      const root = await navigator.storage.getDirectory();
      const dir = await root.getDirectoryHandle('e2e-saved', { create: true });
      window.__picked = suggestedName;
      return dir.getFileHandle(suggestedName, { create: true });
    };
  });
  await page.click(T('save'));
  // The writable commits the file when save() closes it: wait for its full size.
  const { name, sha } = await page.evaluate(async ({ size, ms }) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (window.__picked) {
        const root = await navigator.storage.getDirectory();
        const dir = await root.getDirectoryHandle('e2e-saved');
        const file = await (await dir.getFileHandle(window.__picked)).getFile();
        if (file.size === size) {
          const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
          await dir.removeEntry(window.__picked);
          const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
          return { name: window.__picked, sha: hex };
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { name: window.__picked, sha: null };
  }, { size, ms: STEP_MS * 2 });
  check(name === expectedName, `the picker was offered ${JSON.stringify(name)}, expected ${JSON.stringify(expectedName)}`);
  check(sha === expectedSha, `the file saved through the picker has SHA-256 ${sha}, expected ${expectedSha} (the sample's)`);
  return sha;
}

/**
 * The requests started after `since` (unix seconds): the moment Resume was
 * clicked. Nothing can start between the interruption and then (the old page
 * is gone, and the new one makes no request until Resume), so these are
 * exactly the requests of the resumed session.
 */
function checkRefetch(requests, since, total, stored, label) {
  return checkServed(requests.filter((q) => q.time >= since), requests, total, stored, label, { cut: false });
}

/**
 * `after`: the requests of the resumed session; `all`: every request for the
 * file. The resumed session asks only past byte 0, for at least what was
 * missing and at most one block per connection more (exactly what was missing
 * unless `cut`: the server cut responses off in it), and at most one block per
 * connection was ever fetched twice.
 */
function checkServed(after, all, total, stored, label, { cut }) {
  check(after.length > 0, `${label}: the server logged no request for the file after the interruption`);
  for (const q of after) {
    check(q.status === 206, `${label}: a request after the interruption got ${q.status}: ${q.line}`);
    check(
      q.start !== null && q.start > 0,
      `${label}: a request after the interruption does not start past byte 0: ${q.line}`,
    );
  }
  const servedAfter = after.reduce((n, q) => n + q.sent, 0);
  const bound = total - stored + CONNECTIONS * BLOCK;
  check(
    servedAfter <= bound,
    `${label}: the server sent ${servedAfter} bytes after the interruption, more than ` +
      `(total - stored) + connections x block size = ${bound}`,
  );
  check(
    servedAfter >= total - stored,
    `${label}: requests made after the interruption carried ${servedAfter} bytes, fewer than the ${total - stored} missing`,
  );
  // Nothing interrupts the resumed session: it fetches exactly what was
  // missing. A response cut off may end with bytes the server wrote that the
  // browser never delivered (measured: 32 KiB once in four runs); those are
  // fetched again, within the bound above.
  check(
    cut || servedAfter === total - stored,
    `${label}: requests made after the interruption carried ${servedAfter} bytes; ` +
      `exactly the ${total - stored} missing ones were expected`,
  );
  const servedAll = all.reduce((n, q) => n + q.sent, 0);
  const again = Math.max(0, servedAll - total);
  check(
    again <= CONNECTIONS * BLOCK,
    `${label}: ${again} bytes were fetched twice, more than one block per connection (${CONNECTIONS * BLOCK})`,
  );
  return { servedAfter, bound, servedAll, again, requestsAfter: after.length };
}

// ---- scenarios ------------------------------------------------------------------

async function prepare(page, fileUrl) {
  const count = await page.locator(T('download-entry')).count();
  check(count === 0, `a fresh profile should list no stored download, it lists ${count}`);
  await page.fill(T('url'), fileUrl);
  await page.fill(T('connections'), String(CONNECTIONS));
  await page.fill(T('block-size'), String(BLOCK_MIB));
  await page.locator(T('block-size')).blur();
}

async function scenarioReload(cfg) {
  const began = Date.now();
  const profile = await tempDir('rf-e2e-reload-');
  const downloads = await tempDir('rf-e2e-dl-');
  const { context, page } = await launch(profile, { log, downloads });
  await openDemo(page, cfg.base);
  await prepare(page, cfg.fileUrl);

  const logOffset = (await fs.stat(cfg.accessLog)).size;
  await page.click(T('start'));
  const shown = await waitForFraction(page, INTERRUPT_AT);
  check(shown.store === 'indexeddb', `the download should use IndexedDB, the page says ${shown.store}`);
  check(shown.total === cfg.size, `the page says the file has ${shown.total} bytes, the sample has ${cfg.size}`);

  await page.reload({ waitUntil: 'load', timeout: STEP_MS });
  await page.waitForSelector('html[data-ready="true"]', { timeout: STEP_MS });
  const { stored } = await storedEntry(page, cfg.id, cfg.size);
  const after = await statusOf(page);
  check(after.state === 'paused', `after the reload the page should show the download paused, it shows ${after.state}`);
  check(
    after.stored === stored,
    `after the reload the page shows ${after.stored} bytes stored, the list ${stored}`,
  );
  const sentBefore = await checkStoredWasSent(cfg.accessLog, cfg.filePath, logOffset, stored);
  log(`reload: page showed ${mib(shown.received)} at the reload; ${mib(stored)} was stored; ` +
    `the server had sent ${mib(sentBefore)} of distinct bytes`);

  check(await page.isEnabled(T('resume')), 'the Resume button is not enabled after the reload');
  const resumedAt = Date.now();
  await page.click(T('resume'));
  await waitForComplete(page);
  const resumeMs = Date.now() - resumedAt;
  const restart = await restartNotice(page);
  check(!restart, `the download started over after the reload: ${restart}`);

  await saveAndHash(page, downloads, cfg.sha, path.basename(cfg.filePath), 'picker', cfg.size);
  const requests = await fileRequests(cfg.accessLog, cfg.filePath, logOffset);
  const r = checkRefetch(requests, resumedAt / 1000, cfg.size, stored, 'reload');
  await closeContext(context);
  return { stored, shown: shown.received, resumeMs, totalMs: Date.now() - began, ...r };
}

async function scenarioRestart(cfg) {
  const began = Date.now();
  const profile = await tempDir('rf-e2e-restart-');
  const downloads = await tempDir('rf-e2e-dl-');
  let { context, page } = await launch(profile, { log, downloads });
  await openDemo(page, cfg.base);
  await prepare(page, cfg.fileUrl);

  const logOffset = (await fs.stat(cfg.accessLog)).size;
  await page.click(T('start'));
  const shown = await waitForFraction(page, INTERRUPT_AT);
  await closeContext(context);

  ({ context, page } = await launch(profile, { log, downloads }));
  await openDemo(page, cfg.base);
  const remembered = {
    url: await page.inputValue(T('url')),
    connections: await page.inputValue(T('connections')),
    blockSize: await page.inputValue(T('block-size')),
  };
  check(
    remembered.url === cfg.fileUrl &&
      remembered.connections === String(CONNECTIONS) &&
      remembered.blockSize === String(BLOCK_MIB),
    `the page did not remember its settings across the restart: ${JSON.stringify(remembered)}`,
  );
  const { entry, stored } = await storedEntry(page, cfg.id, cfg.size);
  const sentBefore = await checkStoredWasSent(cfg.accessLog, cfg.filePath, logOffset, stored);
  log(`restart: page showed ${mib(shown.received)} when the browser closed; ${mib(stored)} was stored; ` +
    `the server had sent ${mib(sentBefore)} of distinct bytes`);

  const resumedAt = Date.now();
  await entry.locator(T('entry-resume')).click();
  await waitForComplete(page);
  const resumeMs = Date.now() - resumedAt;
  const restart = await restartNotice(page);
  check(!restart, `the download started over after the browser restart: ${restart}`);

  await saveAndHash(page, downloads, cfg.sha, path.basename(cfg.filePath), 'anchor', cfg.size);
  const requests = await fileRequests(cfg.accessLog, cfg.filePath, logOffset);
  const r = checkRefetch(requests, resumedAt / 1000, cfg.size, stored, 'restart');
  await closeContext(context);
  return { stored, shown: shown.received, resumeMs, totalMs: Date.now() - began, ...r };
}

// ---- a server that cuts responses off ------------------------------------------

/**
 * Reload mid-way while the server cuts responses off, before the reload and
 * after it: what a cut response delivered is kept, the resumed download asks
 * for exactly the rest, and the file is whole.
 */
async function scenarioDrops(cfg) {
  const began = Date.now();
  const file = faultFileUrl(FAULT_FILE);
  const drops = `drop_next=${DROPS}&drop_after=${DROP_AFTER}`;
  await configure(FAULT_FILE, `size=${cfg.size}&seed=7&throttle=${FAULT_THROTTLE}&${drops}&clear_log=1`);
  const sha = await sha256(FAULT_FILE);

  const profile = await tempDir('rf-e2e-drops-');
  const downloads = await tempDir('rf-e2e-dl-');
  const { context, page } = await launch(profile, { log, downloads });
  await openDemo(page, cfg.base);
  await prepare(page, file);
  await page.click(T('start'));
  const shown = await waitForFraction(page, INTERRUPT_AT);
  await page.reload({ waitUntil: 'load', timeout: STEP_MS });
  await page.waitForSelector('html[data-ready="true"]', { timeout: STEP_MS });
  const { entry, stored } = await storedEntry(page, file, cfg.size);

  const before = await gets(FAULT_FILE);
  const dropsBefore = before.filter((q) => q.fault === 'drop').length;
  check(dropsBefore === DROPS, `${dropsBefore} responses were cut off before the reload, ${DROPS} were queued`);
  const sentBefore = covered(before);
  check(stored <= sentBefore, `the list claims ${stored} bytes stored, the server sent only ${sentBefore} distinct bytes`);
  log(`drops: page showed ${mib(shown.received)} at the reload; ${mib(stored)} was stored; ` +
    `${dropsBefore} responses had been cut off`);

  // The log from here on is the resumed session's, and it meets new drops.
  await configure(FAULT_FILE, `${drops}&clear_log=1`);
  const resumedAt = Date.now();
  await entry.locator(T('entry-resume')).click();
  await waitForComplete(page);
  const resumeMs = Date.now() - resumedAt;
  const restart = await restartNotice(page);
  check(!restart, `the download started over: ${restart}`);
  await saveAndHash(page, downloads, sha, FAULT_FILE, 'picker', cfg.size);

  const after = await gets(FAULT_FILE);
  const dropsAfter = after.filter((q) => q.fault === 'drop').length;
  check(dropsAfter === DROPS, `${dropsAfter} responses were cut off after the reload, ${DROPS} were queued`);
  const r = checkServed(after, [...before, ...after], cfg.size, stored, 'drops', { cut: true });
  await closeContext(context);
  return { stored, shown: shown.received, resumeMs, totalMs: Date.now() - began, ...r };
}

function report(name, r) {
  log(
    `${name}: stored at interruption ${mib(r.stored)} (${r.stored} B, page showed ${mib(r.shown)}); ` +
      `served after it ${mib(r.servedAfter)} in ${r.requestsAfter} requests (bound ${mib(r.bound)}); ` +
      `fetched twice ${mib(r.again)} (${r.again} B); resume to complete ${secs(r.resumeMs)}; scenario ${secs(r.totalMs)}`,
  );
}

async function main() {
  const began = Date.now();
  const { base, accessLog, sample, filePath, fileUrl, size } = await fromEnv();
  check(process.env.FAULT_SERVER, 'FAULT_SERVER is not set: the URL of the fault server (tests/fault-server)');
  check(size > 4 * CONNECTIONS * BLOCK, `the sample (${size} bytes) is too small to interrupt mid-way`);
  await fs.access(accessLog).catch(() => fail(`ACCESS_LOG ${accessLog} cannot be read`));
  const sha = await sha256File(sample);
  const id = new URL(fileUrl);
  id.hash = '';
  const cfg = { base, accessLog, sample, filePath, fileUrl, id: id.href, size, sha };
  log(`${fileUrl}: ${mib(size)}, SHA-256 ${sha.slice(0, 16)}…; ${CONNECTIONS} connections, ${BLOCK_MIB} MiB blocks`);

  const reload = await scenarioReload(cfg);
  report('reload', reload);
  passed += 1;
  const restart = await scenarioRestart(cfg);
  report('restart', restart);
  passed += 1;
  const drops = await scenarioDrops(cfg);
  report('drops', drops);
  passed += 1;
  log(`all ${SCENARIOS} scenarios passed in ${secs(Date.now() - began)}`);
}

const SCENARIOS = 3;
let passed = 0;

await run(main, {
  tag: TAG,
  budgetMs: SCRIPT_BUDGET_MS,
  summary: () => `${passed} passed, ${SCENARIOS - passed} failed`,
});
