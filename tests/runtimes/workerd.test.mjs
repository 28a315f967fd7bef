// The npm package in workerd, Cloudflare Workers' runtime (npm package
// `workerd`): the Worker of tests/runtimes/workerd/worker.mjs, with the
// package's modules and the .wasm as a compiled module, downloads from the
// fault server on 127.0.0.1 into memory and into a Durable Object's storage
// (pkg/stores/cloudflare.js) kept on disk across workerd processes.
//   FAULT_SERVER=http://127.0.0.1:PORT node --test tests/runtimes/workerd.test.mjs
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MiB, clearLog, configure, fileUrl, gets, sha256, unique, until } from '../fault-server/client.mjs';
import { killedThenResumed } from './scenarios.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORKERD = path.join(ROOT, 'node_modules/.bin/workerd');
/** What a Worker may use on Cloudflare (and the Durable Object running it). */
const WORKER_MEMORY = 128 * MiB;

let dir;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rf-workerd-'));
});
after(() => fs.rm(dir, { recursive: true, force: true }));

/** The .js files under `dir`'s snippets/, as module names. */
async function snippetsOf(dir) {
  return (await fs.readdir(path.join(ROOT, dir, 'snippets'), { recursive: true }))
    .filter((f) => f.endsWith('.js'))
    .map((f) => `snippets/${f}`);
}

/**
 * A Worker to serve: its Durable Object class and its modules, [name, kind,
 * file under the repository] with the main module first.
 */
const WORKERS = {
  /** The package as pkg/ lays it out (tests/runtimes/workerd/worker.mjs). */
  package: {
    className: 'Downloads',
    modules: async () => [
      ['worker.mjs', 'esModule', 'tests/runtimes/workerd/worker.mjs'],
      ['resumable_fetch.js', 'esModule', 'pkg/resumable_fetch.js'],
      ['resumable_fetch_bg.wasm', 'wasm', 'pkg/resumable_fetch_bg.wasm'],
      ['stores/cloudflare.js', 'esModule', 'pkg/stores/cloudflare.js'],
      ...(await snippetsOf('pkg')).map((s) => [s, 'esModule', `pkg/${s}`]),
    ],
  },
  /** The store contract (tests/contract-wasm, built by scripts/test.sh) on js/stores/cloudflare.js. */
  contract: {
    className: 'Contract',
    modules: async () => [
      ['contract.mjs', 'esModule', 'tests/runtimes/workerd/contract.mjs'],
      ['store_contract_wasm.js', 'esModule', 'target/contract-wasm/store_contract_wasm.js'],
      ['store_contract_wasm_bg.wasm', 'wasm', 'target/contract-wasm/store_contract_wasm_bg.wasm'],
      ['stores/cloudflare.js', 'esModule', 'js/stores/cloudflare.js'],
      ...(await snippetsOf('target/contract-wasm')).map((s) => [s, 'esModule', `target/contract-wasm/${s}`]),
    ],
  },
};

/** The Worker's modules and workerd's config serving it on `port`. */
async function config(configDir, port, storage, worker = WORKERS.package) {
  const embed = (file) => JSON.stringify(path.relative(configDir, path.join(ROOT, file)));
  const modules = (await worker.modules()).map(([name, kind, file]) => `(name = "${name}", ${kind} = embed ${embed(file)})`);
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "loopback", network = (allow = ["local"])),
    (name = "storage", disk = (path = ${JSON.stringify(storage)}, writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [
    ${modules.join(',\n    ')}
  ],
  compatibilityDate = "2026-11-01",
  bindings = [(name = "DOWNLOADS", durableObjectNamespace = "${worker.className}")],
  durableObjectNamespaces = [(className = "${worker.className}", uniqueKey = "resumable-fetch-tests")],
  durableObjectStorage = (localDisk = "storage"),
  globalOutbound = "loopback",
);
`;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/**
 * A workerd process keeping Durable Objects in `storage`, serving `worker`
 * (one of WORKERS) once it answers; `exit` settles with `{ code, signal, stderr }`.
 */
async function startWorkerd(storage, worker = WORKERS.package) {
  await fs.mkdir(storage, { recursive: true });
  const configDir = await fs.mkdtemp(path.join(dir, 'config-'));
  const port = await freePort();
  await fs.writeFile(path.join(configDir, 'config.capnp'), await config(configDir, port, storage, worker));
  // localDisk storage is marked experimental in workerd's config schema.
  const proc = spawn(WORKERD, ['serve', 'config.capnp', '--experimental'], {
    cwd: configDir, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (data) => { stderr += data; });
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  const url = `http://127.0.0.1:${port}`;
  let exited = false;
  exit.then(() => { exited = true; });
  await until(async () => {
    if (exited) throw new Error(`workerd exited: ${stderr}`);
    return fetch(`${url}/ready`).then(() => true, () => false);
  }, 20_000, 'workerd to serve');
  const stop = () => {
    proc.kill('SIGTERM');
    return exit;
  };
  return { url, proc, exit, stop, stderr: () => stderr };
}

/** POSTs a run to the Durable Object `name`; `events` collects the lines, `done` settles at the end. */
function run(base, name, params, events = []) {
  const done = (async () => {
    const response = await fetch(`${base}/do/${encodeURIComponent(name)}/run?${new URLSearchParams(params)}`, { method: 'POST' });
    if (response.status !== 200) throw new Error(`${response.status}: ${await response.text()}`);
    let buffered = '';
    for await (const text of response.body.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) if (line) events.push(JSON.parse(line));
    }
    const end = events.at(-1);
    assert.ok(end && end.event !== 'error', `the run failed: ${JSON.stringify(end)}`);
    return end;
  })();
  return { events, done };
}

const hexToBase64 = (hex) => Buffer.from(hex, 'hex').toString('base64');

test('the default store in workerd is memory, the bytes are the file, and headers browsers drop are sent', { timeout: 60_000 }, async () => {
  const workerd = await startWorkerd(path.join(dir, 'memory'));
  try {
    const name = unique('workerd-memory');
    const size = 10 * MiB + 77;
    await configure(name, `size=${size}&seed=71`);
    const headers = { referer: 'http://127.0.0.1/r', cookie: 'sid=workerd', 'user-agent': 'rf-workerd/1', 'x-trace': 'workerd' };
    const query = new URLSearchParams({ url: fileUrl(name), headers: JSON.stringify(headers) });
    const result = await (await fetch(`${workerd.url}/memory?${query}`)).json();
    assert.deepEqual(result, { store: 'memory', state: 'complete', resumable: true, size, sha256: await sha256(name) });
    const served = await gets(name);
    assert.equal(served.reduce((n, q) => n + q.sent, 0), size, 'every byte fetched once');
    for (const q of served) assert.deepEqual(q.headers, headers);
  } finally {
    await workerd.stop();
  }
});

test('a workerd process killed mid-download is resumed by a fresh one from Durable Object storage', { timeout: 120_000 },
  () => {
    const storage = path.join(dir, 'killed');
    // child.mjs's contract (see scenarios.mjs), with a workerd process as the process.
    const child = (url, store) => {
      const events = [];
      let proc;
      const exit = (async () => {
        const workerd = await startWorkerd(storage);
        proc = workerd.proc;
        const running = run(workerd.url, path.basename(store), { url, connections: 3, blockSize: 4 * MiB, hash: 1 }, events);
        let end;
        let failure = '';
        try {
          end = await running.done;
        } catch (e) {
          failure = `${e}\n`; // the connection ends with the process
        }
        const { signal } = await workerd.stop(); // SIGKILL if it was killed, else stopped now
        if (signal === 'SIGKILL') return { code: null, signal, stderr: workerd.stderr() };
        return { code: end?.event === 'complete' ? 0 : 1, signal: null, stderr: failure + workerd.stderr() };
      })();
      return { proc: { kill: (signal) => proc.kill(signal) }, events, exit };
    };
    return killedThenResumed(child, dir, 'workerd', 'durable-object');
  });

test('a server that ignores Range: the whole file from 200s, into Durable Object storage; its size() and remove()', { timeout: 60_000 }, async () => {
  const workerd = await startWorkerd(path.join(dir, 'no-range'));
  try {
    const name = unique('workerd-no-range');
    const size = 9 * MiB + 5;
    await configure(name, `size=${size}&seed=73&ignore_range=1`);
    const end = await run(workerd.url, name, { url: fileUrl(name), blockSize: 2 * MiB, hash: 1 }).done;
    assert.equal(end.event, 'complete');
    assert.equal(end.resumable, false);
    assert.equal(end.sha256, await sha256(name));
    assert.ok((await gets(name)).every((q) => q.status === 200), 'the server answered 200s');
    // The store lists it, and remove() leaves no key behind.
    const listed = await (await fetch(`${workerd.url}/do/${name}/list`, { method: 'POST' })).json();
    assert.deepEqual(listed.map((e) => [e.id, e.state, e.received, e.store]),
      [[fileUrl(name), 'complete', size, 'durable-object']]);
    const stored = () => fetch(`${workerd.url}/do/${name}/size?id=${encodeURIComponent(fileUrl(name))}`).then((r) => r.json());
    assert.deepEqual(await stored(), { size }, 'size() is where the stored bytes end');
    const removed = await fetch(`${workerd.url}/do/${name}/remove?id=${encodeURIComponent(fileUrl(name))}`, { method: 'POST' });
    assert.deepEqual(await removed.json(), { keys: 0 });
    assert.deepEqual(await stored(), { size: null }, 'nothing stored: no size');
  } finally {
    await workerd.stop();
  }
});

test('sweep() removes the chunks and count of ids whose record is gone, and keeps a recorded download\'s', { timeout: 60_000 }, async () => {
  const workerd = await startWorkerd(path.join(dir, 'sweep'));
  try {
    const name = unique('workerd-sweep');
    const size = 3 * MiB + 11;
    await configure(name, `size=${size}&seed=77`);
    const end = await run(workerd.url, name, { url: fileUrl(name), blockSize: MiB }).done;
    assert.equal(end.event, 'complete');
    const call = async (action, method = 'POST') => {
      const response = await fetch(`${workerd.url}/do/${name}/${action}`, { method });
      const body = await response.json();
      assert.equal(response.status, 200, JSON.stringify(body));
      return body;
    };
    const { keys: recorded } = await call('keys', 'GET');
    assert.equal(recorded.length, 49 + 2, 'the download\'s 49 chunks, its count and its record');
    // More ids than a list batch (128), and one with more chunks than a delete batch (128).
    await call('orphans?prefix=small-&count=130&size=100');
    await call(`orphans?prefix=big-&count=1&size=${9 * MiB}`);
    const { keys: stored } = await call('keys', 'GET');
    assert.equal(stored.length, recorded.length + 130 * 2 + 144 + 1);
    assert.deepEqual((await call('sweep')).keys, recorded, 'sweep() left the orphans, or took the download\'s keys');
    const file = await fetch(`${workerd.url}/do/${name}/file?id=${encodeURIComponent(fileUrl(name))}&size=${size}`);
    const hash = createHash('sha256');
    for await (const chunk of file.body) hash.update(chunk);
    assert.equal(hash.digest('hex'), await sha256(name));
  } finally {
    await workerd.stop();
  }
});

test('the Durable Object store keeps the store contract (the Rust checks, through the custom-store adapter)', { timeout: 60_000 }, async () => {
  const workerd = await startWorkerd(path.join(dir, 'contract'), WORKERS.contract);
  try {
    const response = await fetch(`${workerd.url}/do/contract/contract?prefix=${unique('contract')}`, { method: 'POST' });
    const body = await response.json();
    assert.deepEqual({ status: response.status, ...body }, { status: 200, ok: true });
  } finally {
    await workerd.stop();
  }
});

test('a file larger than a Worker may hold completes over several invocations, each within its request limit',
  { timeout: 300_000 }, async () => {
    const name = unique('workerd-large');
    const size = 160 * MiB + 9;
    const limit = 12;
    await configure(name, `size=${size}&seed=75`);
    const digest = await sha256(name);
    const params = {
      url: fileUrl(name), connections: 3, blockSize: 4 * MiB, maxRequests: limit,
      integrity: `sha256-${hexToBase64(digest)}`,
    };
    const storage = path.join(dir, 'large');
    const ends = [];
    let last;
    for (let invocation = 1; ; invocation += 1) {
      assert.ok(invocation <= 10, 'at most 10 invocations for 41 blocks at 12 requests each');
      await clearLog(name);
      // Each invocation in a fresh workerd process: nothing but the store carries over.
      const workerd = await startWorkerd(storage);
      let end;
      try {
        end = await run(workerd.url, name, params).done;
        if (end.event === 'complete') last = workerd;
        const status = await fs.readFile(`/proc/${workerd.proc.pid}/status`, 'utf8');
        end.peak = Number(/VmHWM:\s*(\d+) kB/.exec(status)[1]) * 1024;
      } finally {
        if (last !== workerd) await workerd.stop();
      }
      const requests = await gets(name);
      assert.ok(requests.length <= limit, `invocation ${invocation} sent ${requests.length} requests`);
      ends.push({ ...end, requests: requests.length, sent: requests.reduce((n, q) => n + q.sent, 0) });
      if (end.event === 'complete') break;
      assert.equal(end.event, 'paused');
      assert.equal(requests.length, limit, 'an invocation pauses only at its limit');
    }
    try {
      console.log(ends.map((e) => `${e.event}: ${e.requests} requests, ${(e.sent / MiB).toFixed(1)} MiB, wasm memory ${(e.wasmMemory / MiB).toFixed(1)} MiB, workerd peak RSS ${(e.peak / MiB).toFixed(1)} MiB`).join('\n'));
      assert.ok(ends.length >= 4, `${ends.length} invocations`);
      // Completing checked `integrity` over the stored file; the stream of it matches too.
      const file = await fetch(`${last.url}/do/${name}/file?id=${encodeURIComponent(fileUrl(name))}&size=${size}`);
      const hash = createHash('sha256');
      for await (const chunk of file.body) hash.update(chunk);
      assert.equal(hash.digest('hex'), digest);
      assert.equal(ends.reduce((n, e) => n + e.sent, 0), size, 'no byte fetched twice across invocations');
      const wasmPeak = Math.max(...ends.map((e) => e.wasmMemory));
      assert.ok(wasmPeak <= 32 * MiB, `wasm memory reached ${wasmPeak} bytes`);
      assert.ok(size > WORKER_MEMORY);
    } finally {
      await last.stop();
    }
  });
