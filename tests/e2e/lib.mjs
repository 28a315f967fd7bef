// What the end-to-end scripts (reload.mjs, quota.mjs) share: the environment
// scripts/test.sh runs them with, checks that fail with a message, headless
// Chromium on a temporary profile (always released), nginx's access log, and
// the watchdog that bounds a whole script. Each script keeps its scenarios.

import { chromium } from 'playwright-core';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Sizes and the MiB figures the scripts log are in binary megabytes. */
export const MiB = 1024 * 1024;
/** One step (a navigation, a click, a DevTools call): the page's default timeout in both scripts. */
export const STEP_MS = 15_000;

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

// ---- checks and messages ----------------------------------------------------

/** A failed check: run() prints its message alone, other errors with their stack. */
export class Failure extends Error {}

/** Ends the script's run with `message` (run() prints it and exits 1). */
export function fail(message) {
  throw new Failure(message);
}

/** Every check of both scripts: fails with `message` unless `condition` holds. */
export function check(condition, message) {
  if (!condition) fail(message);
}

function env(name) {
  const value = process.env[name];
  if (!value) fail(`${name} is not set (needed: BASE_URL, ACCESS_LOG, SAMPLE, FILE_PATH)`);
  return value;
}

/** What scripts/test.sh passes both scripts, and the sample's size: their common setup. */
export async function fromEnv() {
  const base = env('BASE_URL');
  const accessLog = env('ACCESS_LOG');
  const sample = env('SAMPLE');
  const filePath = env('FILE_PATH');
  const fileUrl = new URL(filePath, base).href;
  const size = (await fs.stat(sample)).size;
  return { base, accessLog, sample, filePath, fileUrl, size };
}

/** Bytes as the scripts log them. */
export const mib = (n) => `${(n / MiB).toFixed(1)} MiB`;
/** Milliseconds as the scripts log them. */
export const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** A log whose lines start with `[tag]`: test.sh prints both scripts' lines together. */
export function logger(tag) {
  return (message) => console.log(`[${tag}] ${message}`);
}

// ---- resources, always released -------------------------------------------

const contexts = new Set();
const tempDirs = new Set();

let cleaning;

/** Closes the browsers and removes the directories, once (the watchdog and the run's end may both ask). */
function cleanup() {
  cleaning ??= (async () => {
    for (const context of contexts) {
      await Promise.race([context.close().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
    }
    contexts.clear();
    for (const dir of tempDirs) await fs.rm(dir, { recursive: true, force: true }).catch(() => {});
    tempDirs.clear();
  })();
  return cleaning;
}

/** A new directory under the system's temporary one, removed when run() ends. */
export async function tempDir(prefix) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Headless Chromium on `profile`, closed by run(): `args` extend the common flags, saves go to `downloads`. */
export async function launch(profile, { log, downloads, args = [] }) {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
    ...(downloads ? { acceptDownloads: true, downloadsPath: downloads } : {}),
    viewport: { width: 1100, height: 900 },
    timeout: 30_000,
  });
  contexts.add(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log(`page console ${m.type()}: ${m.text()}`);
  });
  return { context, page };
}

/** Closes a browser launch() opened, which run() then no longer closes. */
export async function closeContext(context) {
  contexts.delete(context);
  await context.close();
}

/** Opens the demo page at `base` and waits until it says it is ready. */
export async function openDemo(page, base) {
  await page.goto(new URL('/', base).href, { waitUntil: 'load', timeout: STEP_MS });
  await page.waitForSelector('html[data-ready="true"]', { timeout: STEP_MS });
}

// ---- the server and the sample ----------------------------------------------

// scripts/nginx.sh's log format:
// `$msec $request_time "$request" $status $body_bytes_sent "$http_range"`.
const LINE = /^(\d+(?:\.\d+)?) (\d+(?:\.\d+)?) "\S+ (\S+)[^"]*" (\d{3}) (\d+) "([^"]*)"$/;

/** Requests for `filePath` logged after byte `offset` of the access log: what the server really sent. */
export async function fileRequests(accessLog, filePath, offset) {
  const text = (await fs.readFile(accessLog)).subarray(offset).toString('utf8');
  const out = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line.trim());
    if (!m) continue;
    const [, endedAt, duration, target, status, sent, rangeHeader] = m;
    if (target.split('?')[0] !== filePath) continue;
    const r = /^bytes=(\d+)-(\d*)$/.exec(rangeHeader);
    out.push({
      // When the request started: nginx logs it when it ends.
      time: Number(endedAt) - Number(duration),
      status: Number(status),
      sent: Number(sent),
      start: r ? Number(r[1]) : null,
      line: line.trim(),
    });
  }
  return out;
}

/** SHA-256 of a file, streamed: what the downloaded bytes must hash to. */
export function sha256File(file) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

// ---- the script as a whole ----------------------------------------------------

/** Runs `main` within `budgetMs`, always releases what launch() and tempDir() made, exits 0 or 1. */
export async function run(main, { tag, budgetMs, summary }) {
  const watchdog = setTimeout(async () => {
    console.error(`[${tag}] FAIL: the test did not finish within ${secs(budgetMs)}`);
    if (summary) console.log(summary());
    await cleanup();
    process.exit(1);
  }, budgetMs);

  let code = 0;
  try {
    await main();
  } catch (e) {
    code = 1;
    console.error(`[${tag}] FAIL: ${e instanceof Failure ? e.message : e && e.stack ? e.stack : e}`);
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
  if (summary) console.log(summary());
  process.exit(code);
}
