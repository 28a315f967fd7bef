#!/usr/bin/env node
// The benchmark (`make bench`, through scripts/bench.sh): headless Chromium
// on a persistent profile downloads a file from nginx on 127.0.0.1 with each
// contender of bench/contenders.js, RUNS times each, interleaved (one run of
// every contender per round, the order shuffled each round) so that drift on
// the machine affects all alike. It prints the figures and writes them into
// docs/BENCHMARKS.md between the marker comments, leaving the rest of that
// file as it is. It never fails on a time: only on a download that does not
// verify (its size, and SHA-256 per slice on each contender's first run) or
// a step that does not finish within its bound.
//
//   BASE_URL=http://127.0.0.1:PORT ACCESS_LOG=DIR/logs/access.log PROFILE=DIR/profile \
//   SAMPLE=DIR/files/a.bin RESUME_SAMPLE=DIR/files/b.bin RUNS=3 DOC=docs/BENCHMARKS.md \
//   node bench/run.mjs
//
// SAMPLE and RESUME_SAMPLE are served at /files/<name>.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MiB, fileRequests, launch, logger, run } from '../tests/e2e/lib.mjs';

const log = logger('bench');
const MB = 1e6;
/** Slices hashed one by one to check a result without holding it whole. */
const SLICE = 8 * MiB;
/** Bytes stored before the reload of the resume measure. */
const RESUME_AT = 1024 * MiB;
/** resumable-fetch's default block sizes, streamed and taken whole: the bound on bytes fetched again is one block per connection. */
const BLOCK = 8 * MiB;
const WHOLE_BLOCK = 16 * MiB;

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set (see bench/run.mjs)`);
  return value;
};
const base = env('BASE_URL');
const accessLog = env('ACCESS_LOG');
const profile = env('PROFILE');
const sample = env('SAMPLE');
const resumeSample = env('RESUME_SAMPLE');
const runs = Math.max(1, Number(env('RUNS', '5')) || 5);
const resumeRuns = Math.max(1, Number(env('RESUME_RUNS', String(Math.min(runs, 3)))) || 1);
const doc = env('DOC', 'docs/BENCHMARKS.md');
const command = env('COMMAND', 'make bench');
/** ONLY=a,b: just these contenders, the throughput only, printed and not written to DOC (for experiments). */
const only = process.env.ONLY ? process.env.ONLY.split(',').map((s) => s.trim()) : null;

/** The contenders of the throughput table, in the table's order. */
const ALL_CONTENDERS = [
  ['ceiling', '`fetch().arrayBuffer()`, no persistence: the ceiling'],
  ['js-pipe-opfs', '`fetch().body.pipeTo()` into an OPFS `createWritable()`'],
  ['js-idb-blocks', 'JS: 8 MiB Range blocks ×4 into IndexedDB as Blob values'],
  ['js-idb-lanes', 'JS: the same, block i in object store i mod 4 and the list of blocks done in a transaction after it (as resumable-fetch stores them)'],
  ['rf-default', 'resumable-fetch, default options (IndexedDB on a page, 4 connections, 8 MiB blocks, 16 MiB taken whole)'],
  ['rf-idb-c1', 'resumable-fetch, IndexedDB, 1 connection'],
  ['rf-idb-c3', 'resumable-fetch, IndexedDB, 3 connections'],
  ['rf-idb-integrity', 'resumable-fetch, IndexedDB, 4 connections, `integrity` (SHA-256)'],
  ['rf-worker-c1', 'resumable-fetch, `worker: true` (OPFS in its worker), 1 connection'],
  ['rf-worker-c4', 'resumable-fetch, `worker: true` (OPFS in its worker), 4 connections'],
];
const unknown = (only ?? []).filter((name) => !ALL_CONTENDERS.some(([n]) => n === name));
if (unknown.length) throw new Error(`ONLY names no contender ${unknown.join(', ')}`);
const CONTENDERS = only ? ALL_CONTENDERS.filter(([name]) => only.includes(name)) : ALL_CONTENDERS;
const JS_PERSISTENT = ['js-pipe-opfs', 'js-idb-blocks', 'js-idb-lanes'];
/** bench/contenders.js's WHOLE_BUFFER_MAX: past it the ceiling reads the body and drops it. */
const WHOLE_BUFFER_MAX = 1024 * MiB;

function contenderLabels(size) {
  if (size <= WHOLE_BUFFER_MAX) return CONTENDERS;
  const ceiling = '`fetch()` body read and dropped (over 1 GiB, `arrayBuffer()` fails in Chromium), no persistence: the ceiling';
  return CONTENDERS.map(([name, label]) => [name, name === 'ceiling' ? ceiling : label]);
}
const RESUMERS = [
  ['rf-default', 'IndexedDB on the page (default options)'],
  ['rf-worker-c4', 'OPFS in the worker (`worker: true`)'],
];

// ---- small helpers -------------------------------------------------------------

/** `promise`, or an error naming `what` after `ms`: no step of the benchmark waits unbounded. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mbps = (bytes, ms) => bytes / MB / (ms / 1000);
const fmtMiB = (n) => (n == null ? 'n/a' : `${(n / MiB).toFixed(n < 10 * MiB ? 1 : 0)} MiB`);
const fmt0 = (x) => x.toFixed(0);
/** CPU seconds of the renderer, browser and network processes. */
const fmtCpu = (c) => [c.renderer, c.browser, c.network].map((ms) => (ms / 1000).toFixed(1)).join(' / ') + ' s';

/** SHA-256 of each SLICE of `file` (hex) and of the whole (base64), in one streamed pass. */
async function fileDigests(file) {
  const whole = createHash('sha256');
  const slices = [];
  let slice = createHash('sha256');
  let inSlice = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 * MiB })) {
    whole.update(chunk);
    for (let at = 0; at < chunk.length; ) {
      const take = Math.min(SLICE - inSlice, chunk.length - at);
      slice.update(chunk.subarray(at, at + take));
      inSlice += take;
      at += take;
      if (inSlice === SLICE) {
        slices.push(slice.digest('hex'));
        slice = createHash('sha256');
        inSlice = 0;
      }
    }
  }
  if (inSlice > 0) slices.push(slice.digest('hex'));
  return { slices, integrity: `sha256-${whole.digest('base64')}` };
}

// ---- the renderer's memory, from /proc -------------------------------------------------

function readProc(pid, file) {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

/** Our browser's processes (they carry its profile directory), by pid: their kind and arguments. */
function browserProcesses() {
  const dir = `--user-data-dir=${path.resolve(profile)}`;
  const out = new Map();
  for (const pid of readdirSafe('/proc').filter((entry) => /^\d+$/.test(entry))) {
    // Chromium rewrites its processes' command lines as one line: arguments are its words.
    const args = new Set(readProc(pid, 'cmdline').split(/[\0 ]/));
    if (!args.has(dir)) continue;
    const word = (prefix) => [...args].find((a) => a.startsWith(prefix))?.slice(prefix.length);
    const kind = word('--utility-sub-type=') ?? word('--type=') ?? 'browser';
    out.set(pid, { kind, args });
  }
  return out;
}

/** The renderers, except the browser's own WebUI one: the page's is the largest of them. */
function rendererPids() {
  return [...browserProcesses()]
    .filter(([, p]) => p.kind === 'renderer' && !p.args.has('--top-chrome-webui'))
    .map(([pid]) => pid);
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** The CPU time (user and system, ms) in a /proc `stat` line; NaN if unreadable. */
function cpuMs(stat) {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** CPU time so far of our browser's processes, in ms, by kind: renderer (pages and workers), browser, network. */
function cpuByKind() {
  const out = { renderer: 0, browser: 0, network: 0, other: 0 };
  for (const [pid, { kind }] of browserProcesses()) {
    const ms = cpuMs(readProc(pid, 'stat'));
    const key = kind === 'network.mojom.NetworkService' ? 'network' : kind in out ? kind : 'other';
    out[key] += Number.isFinite(ms) ? ms : 0;
  }
  return out;
}

/** CPU time so far of each thread of our browser's processes, in ms, by "kind/thread name" (ONLY runs log the busiest). */
function cpuByThread() {
  const out = new Map();
  for (const [pid, { kind }] of browserProcesses()) {
    for (const tid of readdirSafe(`/proc/${pid}/task`)) {
      const stat = readProc(pid, `task/${tid}/stat`);
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ms = cpuMs(stat);
      const key = `${kind.replace('network.mojom.NetworkService', 'network')}/${name}`;
      if (Number.isFinite(ms)) out.set(key, (out.get(key) ?? 0) + ms);
    }
  }
  return out;
}

function readdirSafe(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const statusKiB = (pid, field) =>
  Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readProc(pid, 'status'))?.[1] ?? 0) * 1024;

/**
 * Watches a download as it runs: the CPU time of the browser's processes;
 * the page's JS heap (V8's used heap) and the ArrayBuffer backing stores
 * outside it, from the DevTools protocol every 100 ms; and the renderers'
 * peak resident memory (VmHWM, reset first through clear_refs; sampled
 * VmRSS where that is refused).
 */
function watchRun(cdp) {
  const cpuBefore = cpuByKind();
  const threadsBefore = only ? cpuByThread() : null;
  const pids = rendererPids();
  let hwmReset = pids.length > 0;
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      hwmReset = false;
    }
  }
  let heap = 0;
  let buffers = 0;
  let rss = 0;
  let busy = false;
  const sample = async () => {
    if (busy) return;
    busy = true;
    try {
      const u = await cdp.send('Runtime.getHeapUsage');
      heap = Math.max(heap, u.usedSize);
      buffers = Math.max(buffers, u.backingStorageSize ?? 0);
    } catch {
      // The page is navigating: the next sample counts.
    }
    for (const pid of pids) rss = Math.max(rss, statusKiB(pid, 'VmRSS'));
    busy = false;
  };
  const timer = setInterval(sample, 100);
  let stopped;
  // Idempotent: called when the run settles, and again for the figures.
  const stop = () => {
    stopped ??= (async () => {
      clearInterval(timer);
      await sample();
      if (hwmReset) for (const pid of pids) rss = Math.max(rss, statusKiB(pid, 'VmHWM'));
      const cpuAfter = cpuByKind();
      const cpu = Object.fromEntries(Object.entries(cpuAfter).map(([k, v]) => [k, v - cpuBefore[k]]));
      const threads = threadsBefore && [...cpuByThread()]
        .map(([k, v]) => [k, v - (threadsBefore.get(k) ?? 0)])
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6);
      return { heap, buffers, rss: pids.length ? rss : null, cpu, threads };
    })();
    return stopped;
  };
  return { stop };
}

// ---- the page ------------------------------------------------------------------

/**
 * `items` in an order drawn from `seed` (xorshift): each round its own, so
 * no contender always follows the same one (whose stored gigabyte the
 * browser may still be deleting), and the same for every run of the bench.
 */
function shuffled(items, seed) {
  const out = [...items];
  let x = seed * 0x9e3779b9 + 1;
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Bytes in the files under `dir` (0 if it is gone). */
async function bytesUnder(dir) {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  let total = 0;
  for (const e of entries) {
    if (e.isFile()) total += await fs.stat(path.join(e.parentPath, e.name)).then((s) => s.size, () => 0);
  }
  return total;
}

/** What the profile stores for pages: IndexedDB (with its Blob files) and OPFS. */
const STORAGE_DIRS = ['IndexedDB', 'File System'].map((d) => path.join(profile, 'Default', d));
/** Left in the storage once everything is deleted: databases' logs and indexes. */
const EMPTY_STORAGE = 4 * MiB;

/**
 * Waits (at most 30 s) until the browser has deleted the files of what the
 * last run stored (it does so in the background, after `clean()` resolved),
 * writes the dirty pages, then a pause: the next run starts on a quiet
 * machine, whichever contender came before it.
 */
async function settle() {
  const began = Date.now();
  let stored = 0;
  for (let i = 0; i < 150; i++) {
    stored = (await Promise.all(STORAGE_DIRS.map(bytesUnder))).reduce((a, b) => a + b, 0);
    if (stored <= EMPTY_STORAGE) break;
    await sleep(200);
  }
  if (only) log(`  storage emptied to ${fmtMiB(stored)} in ${Date.now() - began} ms`);
  await new Promise((resolve) => execFile('sync', () => resolve()));
  await sleep(500);
}

async function openBench(page) {
  await page.goto(new URL('/bench/', base).href, { waitUntil: 'load' });
  await page.waitForSelector('html[data-ready="true"]');
  await within(page.evaluate(() => bench.clean()), 30_000, 'cleaning the storage');
}

/** The wasm memory of the package's worker, if the page started one (it only grows: this is its peak). */
async function workerWasm(page) {
  for (const worker of page.workers()) {
    if (!worker.url().endsWith('/pkg/worker.js')) continue;
    return within(
      worker.evaluate(async () => {
        const exports = await (await import('/pkg/resumable_fetch.js')).default();
        return exports.memory.buffer.byteLength;
      }),
      10_000,
      "reading the worker's wasm memory",
    );
  }
  return null;
}

async function verify(page, name, result, expected, { hash }) {
  if (result.bytes !== expected.size) {
    throw new Error(`${name}: ${result.bytes} bytes, not ${expected.size}`);
  }
  if (!hash) return 'size';
  const slices = await within(page.evaluate((s) => bench.digests(s), SLICE), 120_000, `${name}: hashing`);
  if (slices === null) return 'size'; // the ceiling keeps nothing to hash
  const bad = slices.findIndex((d, i) => d !== expected.slices[i]);
  if (bad >= 0 || slices.length !== expected.slices.length) {
    throw new Error(`${name}: the stored bytes differ from the file (slice ${bad} of ${SLICE} bytes)`);
  }
  return 'SHA-256';
}

// ---- the measures ---------------------------------------------------------------

async function throughput(page, cdp, file, expected) {
  const url = new URL(`/files/${path.basename(file)}`, base).href;
  const bound = 60_000 + (expected.size / (5 * MB)) * 1000;
  const results = new Map(CONTENDERS.map(([name]) => [name, []]));
  for (let round = 0; round < runs; round++) {
    const order = shuffled(CONTENDERS.map(([name]) => name), round + 1);
    for (const name of order) {
      await openBench(page);
      // What earlier runs left (garbage, files being deleted, dirty pages) is not this one's.
      await cdp.send('HeapProfiler.collectGarbage');
      await within(settle(), 30_000, 'flushing the disk');
      const watching = watchRun(cdp);
      const result = await within(
        page.evaluate(([n, u, s, i]) => bench.run(n, u, s, i), [name, url, expected.size, expected.integrity]),
        bound,
        `${name} (round ${round + 1})`,
      ).finally(watching.stop);
      const memory = await watching.stop();
      const wasm = name.includes('worker') ? await workerWasm(page) : name.startsWith('rf-') ? result.wasmBytes : null;
      const verified = await verify(page, name, result, expected, { hash: results.get(name).length === 0 });
      const speed = mbps(result.bytes, result.ms);
      results.get(name).push({ ...result, speed, wasm, ...memory, verified });
      log(
        `round ${round + 1}/${runs} ${name.padEnd(16)} ${fmt0(speed).padStart(4)} MB/s ` +
          `(${fmt0(result.ms)} ms), wasm ${fmtMiB(wasm)}, JS heap ${fmtMiB(memory.heap)}, ` +
          `ArrayBuffers ${fmtMiB(memory.buffers)}, ` +
          `renderer RSS ${fmtMiB(memory.rss)}, CPU ${fmtCpu(memory.cpu)}, verified: ${verified}`,
      );
      if (memory.threads) log(`  busiest threads: ${memory.threads.map(([k, ms]) => `${k} ${ms} ms`).join(', ')}`);
    }
  }
  return results;
}

async function resume(page, file, expected) {
  const url = new URL(`/files/${path.basename(file)}`, base).href;
  const filePath = new URL(url).pathname;
  const bound = 60_000 + (expected.size / (5 * MB)) * 1000;
  const results = new Map(RESUMERS.map(([name]) => [name, []]));
  for (let round = 0; round < resumeRuns; round++) {
    for (const [name] of RESUMERS) {
      await openBench(page);
      // As for throughput: not while the browser still deletes what the last run stored.
      await within(settle(), 30_000, 'flushing the disk');
      const beganAt = (await fs.stat(accessLog)).size;
      await within(page.evaluate(([n, u]) => bench.resumeBegin(n, u), [name, url]), 30_000, `${name}: open`);
      const deadline = Date.now() + bound;
      for (;;) {
        const received = await page.evaluate(() => bench.received());
        if (received >= RESUME_AT) break;
        if (Date.now() > deadline) throw new Error(`${name}: ${received} bytes stored, short of ${RESUME_AT}`);
        await sleep(50);
      }
      await page.reload({ waitUntil: 'load' });
      await page.waitForSelector('html[data-ready="true"]');
      const result = await within(
        page.evaluate(([n, u]) => bench.resumeMeasure(n, u), [name, url]),
        bound,
        `${name}: the resumed download`,
      );
      await sleep(300); // nginx logs a request as it ends
      // Everything sent for the file, before and after the reload, beyond the file once.
      const requests = await fileRequests(accessLog, filePath, beganAt);
      const again = requests.reduce((sum, r) => sum + r.sent, 0) - expected.size;
      const wasm = name.includes('worker') ? await workerWasm(page) : result.wasmBytes;
      const verified = await verify(page, name, result, expected, { hash: round === 0 });
      results.get(name).push({ ...result, again, wasm, verified });
      log(
        `resume ${round + 1}/${resumeRuns} ${name.padEnd(13)} ${fmtMiB(result.stored)} stored: ` +
          `open ${fmt0(result.openMs)} ms, first new byte ${fmt0(result.firstByteMs ?? NaN)} ms, ` +
          `fetched again ${fmtMiB(again)}, wasm ${fmtMiB(wasm)}, verified: ${verified}`,
      );
      await page.evaluate(() => bench.clean());
    }
  }
  return results;
}

// ---- the report -------------------------------------------------------------------

function range(values, format) {
  return `${format(median(values))} (${format(Math.min(...values))}–${format(Math.max(...values))})`;
}

function report({ results, resumed, machine, size, resumeSize, seconds }) {
  const med = (name) => median(results.get(name).map((r) => r.speed));
  const ceiling = med('ceiling');
  const bestJs = JS_PERSISTENT.reduce((a, b) => (med(a) >= med(b) ? a : b));
  const best = med(bestJs);
  const maxOf = (name, key) => {
    const values = results.get(name).map((r) => r[key]).filter((v) => v != null);
    return values.length ? Math.max(...values) : null;
  };
  const rfWasm = Math.max(
    ...[...results.entries(), ...resumed.entries()]
      .filter(([name]) => name.startsWith('rf-'))
      .flatMap(([, rs]) => rs.map((r) => r.wasm ?? 0)),
  );
  const def = med('rf-default');
  const firstBytes = [...resumed.values()].flat().map((r) => r.firstByteMs ?? Infinity);
  const worstResume = Math.max(...firstBytes);
  const mark = (ok) => (ok ? 'met' : '**missed**');

  const lines = [];
  lines.push(
    '## Targets and where we stand',
    '',
    `Measured ${machine.date} (figures below); each line is recomputed by \`${command}\`.`,
    '',
    '| target | now | |',
    '|---|---|---|',
    `| default configuration ≥ 1.0× the best JS-only persistent approach | ${(def / best).toFixed(2)}× (${fmt0(def)} vs ${fmt0(best)} MB/s, \`${bestJs}\`) | ${mark(def >= best)} |`,
    `| default configuration ≥ 0.5× the ceiling | ${(def / ceiling).toFixed(2)}× (${fmt0(def)} vs ${fmt0(ceiling)} MB/s) | ${mark(def >= 0.5 * ceiling)} |`,
    `| peak wasm memory ≤ 32 MiB whatever the file size | ${fmtMiB(rfWasm)} at most, over every resumable-fetch run (files of ${fmtMiB(size)} and ${fmtMiB(resumeSize)}) | ${mark(rfWasm <= 32 * MiB)} |`,
    `| resume to the first new byte ≤ 200 ms with 1 GiB stored | ${fmt0(worstResume)} ms at worst over ${firstBytes.length} reloads | ${mark(worstResume <= 200)} |`,
    '',
    '## Throughput and memory',
    '',
    `A ${fmtMiB(size)} file of random bytes from nginx on 127.0.0.1, ${runs} runs of each contender, ` +
      'interleaved (one run of each per round, in an order shuffled every round; the disk flushed before each run). ' +
      'MB/s are 10^6 bytes per second, from the contender\'s first call to its stored result ' +
      '(for resumable-fetch: from `Download.open` to `start()` resolving `complete`); ' +
      'median (min–max). Ratios are of medians. Memory columns are the peaks over the runs: ' +
      'wasm memory (`memory.buffer.byteLength` of the instance that downloads, which only grows), ' +
      'the page\'s JS heap (V8\'s used heap) and ArrayBuffer backing stores (outside that heap, ' +
      'including the ones garbage not yet collected holds), sampled every 100 ms (a worker\'s own are not in them), and the renderer process\'s peak resident memory ' +
      '(VmHWM, which includes the worker). Every run is checked for its size; each contender\'s ' +
      'first run also has its stored bytes hashed (SHA-256 per 8 MiB slice, against the file). ' +
      'CPU is the median over the runs of the CPU time (user and system) the browser\'s renderer ' +
      '(the page and any worker), browser and network service processes spent during the run: ' +
      'where the time goes, on a machine where the download is bound by CPU.',
    '',
    '| contender | MB/s | × ceiling | × best JS | CPU: renderer / browser / network | wasm | JS heap | ArrayBuffers | renderer RSS | checked |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const [name, label] of contenderLabels(size)) {
    const rs = results.get(name);
    const speeds = rs.map((r) => r.speed);
    const m = median(speeds);
    lines.push(
      `| ${label} (\`${name}\`) | ${range(speeds, fmt0)} | ${(m / ceiling).toFixed(2)} | ${(m / best).toFixed(2)} | ` +
        `${fmtCpu(Object.fromEntries(['renderer', 'browser', 'network'].map((k) => [k, median(rs.map((r) => r.cpu[k]))])))} | ` +
        `${name.startsWith('rf-') ? fmtMiB(maxOf(name, 'wasm')) : '–'} | ${fmtMiB(maxOf(name, 'heap'))} | ` +
        `${fmtMiB(maxOf(name, 'buffers'))} | ` +
        `${fmtMiB(maxOf(name, 'rss'))} | ${[...new Set(rs.map((r) => r.verified))].join(', ')} |`,
    );
  }
  lines.push(
    '',
    `"Best JS" is the faster (by median) of the JS-only persistent contenders in this run: \`${bestJs}\`.`,
    '',
    '## Resume after a reload',
    '',
    `A ${fmtMiB(resumeSize)} file; the page is reloaded while the download runs, once ${fmtMiB(RESUME_AT)} ` +
      `are stored; then the time from \`Download.open\` (on the reloaded page) to the first progress ` +
      `event reporting a byte beyond what was stored, and the bytes fetched again: what nginx sent ` +
      `for the file, before and after the reload, beyond its size (the parts of blocks in flight at the ` +
      `reload; the bound is one block per connection: ${fmtMiB(WHOLE_BLOCK)} where blocks are taken whole, ${fmtMiB(BLOCK)} where they are streamed). ${resumeRuns} reload(s) per ` +
      `backend; median (min–max).`,
    '',
    '| backend | stored at the reload | `Download.open` | first new byte | fetched again | wasm | checked |',
    '|---|---|---|---|---|---|---|',
  );
  for (const [name, label] of RESUMERS) {
    const rs = resumed.get(name);
    const ms = (x) => `${fmt0(x)} ms`;
    lines.push(
      `| ${label} (\`${name}\`) | ${range(rs.map((r) => r.stored), fmtMiB)} | ${range(rs.map((r) => r.openMs), ms)} | ` +
        `${range(rs.map((r) => r.firstByteMs ?? Infinity), ms)} | ${range(rs.map((r) => r.again), fmtMiB)} | ` +
        `${fmtMiB(Math.max(...rs.map((r) => r.wasm ?? 0)))} | ${[...new Set(rs.map((r) => r.verified))].join(', ')} |`,
    );
  }
  lines.push(
    '',
    '## Where and how',
    '',
    `- Machine: ${machine.cpus} × ${machine.cpu}, ${machine.ram} RAM; load average ${machine.loadBefore} before, ${machine.loadAfter} after`,
    `- Browser: ${machine.browser}, headless, persistent profile`,
    `- Date: ${machine.date} (the machine's clock, UTC)`,
    `- Command: \`${command}\` (${seconds.toFixed(0)} s)`,
  );
  return lines.join('\n');
}

const BEGIN = '<!-- bench:begin: written by `make bench` (bench/run.mjs); edit outside the markers -->';
const END = '<!-- bench:end -->';
const SKELETON = `# Benchmarks

How fast resumable-fetch downloads in Chromium, against what a page can do
without it, and what it costs in memory. \`make bench\` measures it and rewrites
the part between the markers below; the rest of this file is written by hand.

${BEGIN}
${END}

## What we tried
`;

async function writeDoc(text) {
  let current;
  try {
    current = await fs.readFile(doc, 'utf8');
  } catch {
    current = SKELETON;
  }
  const begin = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${doc} lacks the markers; restore them or delete the file`);
  const next = `${current.slice(0, begin + BEGIN.length)}\n\n${text}\n\n${current.slice(end)}`;
  await fs.mkdir(path.dirname(doc), { recursive: true });
  await fs.writeFile(doc, next);
}

// ---- the whole run -------------------------------------------------------------------

async function main() {
  const started = Date.now();
  const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const loadBefore = load();
  log(`hashing the samples (SHA-256 per ${SLICE / MiB} MiB slice)`);
  const expected = { size: (await fs.stat(sample)).size, ...(await fileDigests(sample)) };
  const expectedResume = resumeSample === sample
    ? expected
    : { size: (await fs.stat(resumeSample)).size, ...(await fileDigests(resumeSample)) };

  const { context, page } = await launch(profile, { log });
  const cdp = await context.newCDPSession(page);
  const { product } = await cdp.send('Browser.getVersion');
  log(`${product}; ${runs} runs of ${CONTENDERS.length} contenders on ${fmtMiB(expected.size)}`);

  const results = await throughput(page, cdp, sample, expected);
  if (only) {
    for (const [name] of CONTENDERS) {
      const rs = results.get(name);
      const cpu = ['renderer', 'browser', 'network'].map((k) => [k, median(rs.map((r) => r.cpu[k]))]);
      console.log(`${name.padEnd(16)} ${range(rs.map((r) => r.speed), fmt0)} MB/s, CPU ${fmtCpu(Object.fromEntries(cpu))}`);
    }
    return;
  }
  log(`resume: ${fmtMiB(expectedResume.size)}, reloaded at ${fmtMiB(RESUME_AT)} stored`);
  const resumed = await resume(page, resumeSample, expectedResume);
  await openBench(page); // leaves the profile empty

  const memTotal = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  const machine = {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    ram: memTotal ? `${(Number(memTotal) / 1024 / 1024).toFixed(1)} GiB` : 'unknown',
    browser: product.replace('HeadlessChrome', 'Chromium'),
    date: new Date().toISOString().slice(0, 10),
    loadBefore,
    loadAfter: load(),
  };
  const seconds = (Date.now() - started) / 1000;
  const text = report({ results, resumed, machine, size: expected.size, resumeSize: expectedResume.size, seconds });
  console.log(`\n${text}\n`);
  await writeDoc(text);
  log(`written to ${doc}; ${seconds.toFixed(0)} s`);
}

// A bound on the whole run, far above its usual length (a download at 50 MB/s
// or less is a machine in trouble): it only stops a run that hangs.
const atSlowSpeed = (bytes) => 20_000 + (bytes / (50 * MB)) * 1000;
const budgetMs =
  5 * 60_000 +
  runs * CONTENDERS.length * atSlowSpeed(statSync(sample).size) +
  resumeRuns * RESUMERS.length * 2 * atSlowSpeed(statSync(resumeSample).size);
await run(main, { tag: 'bench', budgetMs });
