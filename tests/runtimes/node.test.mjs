// The npm package in Node, as an application uses it (pkg/node.js, the
// file store of pkg/stores/node.js), against the fault server on 127.0.0.1:
//   FAULT_SERVER=http://127.0.0.1:PORT node --test tests/runtimes/node.test.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import init, { Download } from '../../pkg/node.js';
import { fileStore } from '../../pkg/stores/node.js';
import { MiB, clearLog, configure, fileUrl, gets, sha256, unique, until } from './fault.mjs';

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));
/** What child.mjs downloads with. */
const CONNECTIONS = 3;
const BLOCK = 4 * MiB;

let dir;
before(async () => {
  await init();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rf-node-'));
});
after(() => fs.rm(dir, { recursive: true, force: true }));

async function blobSha256(blob) {
  const hash = createHash('sha256');
  for await (const chunk of blob.stream()) hash.update(chunk);
  return hash.digest('hex');
}

/** Runs child.mjs; `events` collects what it reports, `exit` settles when it ends. */
function child(url, store) {
  const proc = spawn(process.execPath, [CHILD, url, store], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events = [];
  let stderr = '';
  let buffered = '';
  proc.stdout.on('data', (data) => {
    buffered += data;
    const lines = buffered.split('\n');
    buffered = lines.pop();
    for (const line of lines) if (line) events.push(JSON.parse(line));
  });
  proc.stderr.on('data', (data) => { stderr += data; });
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { proc, events, exit };
}

test('the default store in Node is memory, and the bytes are the file', { timeout: 60_000 }, async () => {
  const name = unique('node-memory');
  await configure(name, `size=${10 * MiB + 123}&seed=41`);
  const dl = await Download.open(fileUrl(name), { blockSize: 2 * MiB });
  assert.equal(dl.store, 'memory');
  assert.equal(await dl.start(), 'complete');
  assert.equal(await blobSha256(await dl.blob()), await sha256(name));
  assert.equal((await gets(name)).reduce((n, q) => n + q.sent, 0), 10 * MiB + 123, 'every byte fetched once');
  dl.free();
});

test('a process killed mid-download is resumed by a fresh one from the file store', { timeout: 120_000 }, async () => {
  const name = unique('node-killed');
  const size = 48 * MiB + 4321;
  // 4 MiB/s per connection: the first process is killed a few seconds in.
  await configure(name, `size=${size}&seed=42&throttle=${4 * MiB}`);
  const store = path.join(dir, name);

  const first = child(fileUrl(name), store);
  await until(() => first.events.some((e) => e.event === 'progress' && e.received >= 0.3 * size), 60_000,
    'the first process to receive 30 %');
  first.proc.kill('SIGKILL');
  const killed = await first.exit;
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  const before = await gets(name);
  await clearLog(name);
  await configure(name, 'throttle=0');

  const second = child(fileUrl(name), store);
  const done = await second.exit;
  assert.equal(done.code, 0, done.stderr);
  const opened = second.events.find((e) => e.event === 'open');
  const complete = second.events.find((e) => e.event === 'complete');
  assert.equal(opened.store, 'file');
  const stored = opened.received;
  assert.ok(stored > 0 && stored < size, `the fresh process found ${stored} bytes stored`);
  assert.equal(complete.size, size);
  assert.equal(complete.sha256, await sha256(name));

  const resumed = await gets(name);
  for (const q of resumed) {
    assert.equal(q.status, 206);
    assert.ok(q.start > 0, `the resumed process asked from byte ${q.start}`);
  }
  const servedAfter = resumed.reduce((n, q) => n + q.sent, 0);
  assert.equal(servedAfter, size - stored, 'the fresh process fetched exactly what was missing');
  const again = before.reduce((n, q) => n + q.sent, 0) + servedAfter - size;
  assert.ok(again <= CONNECTIONS * BLOCK, `${again} bytes were fetched twice, more than one block per connection`);
});

test('a server that ignores Range: the whole file from one 200, into the file store', { timeout: 60_000 }, async () => {
  const name = unique('node-no-range');
  const size = 9 * MiB + 17;
  await configure(name, `size=${size}&seed=43&ignore_range=1`);
  const store = fileStore(path.join(dir, name));
  const dl = await Download.open(fileUrl(name), { store, blockSize: 2 * MiB });
  assert.equal(await dl.start(), 'complete');
  assert.equal(dl.resumable, false);
  assert.equal(await blobSha256(await dl.blob()), await sha256(name));
  const served = await gets(name);
  assert.ok(served.every((q) => q.status === 200), 'the server answered 200s');
  // Another Download finds it complete in the store, and can remove it.
  const listed = await Download.list({ store });
  assert.deepEqual(listed.map((e) => [e.id, e.state, e.received]), [[fileUrl(name), 'complete', size]]);
  await Download.remove(fileUrl(name), { store });
  assert.deepEqual(await Download.list({ store }), []);
  assert.deepEqual((await fs.readdir(path.join(dir, name))).length, 0, 'remove() deleted the data and record files');
  dl.free();
});

test('headers pages may not set are sent from Node', { timeout: 30_000 }, async () => {
  const name = unique('node-headers');
  await configure(name, `size=${MiB}&seed=44`);
  const headers = { 'User-Agent': 'rf-node/1', Cookie: 'sid=n', Referer: 'http://127.0.0.1/r', 'X-Trace': 'n-1' };
  const dl = await Download.open(fileUrl(name), { headers });
  assert.equal(await dl.start(), 'complete');
  const [served] = await gets(name);
  assert.deepEqual(served.headers, { referer: 'http://127.0.0.1/r', cookie: 'sid=n', 'user-agent': 'rf-node/1', 'x-trace': 'n-1' });
  await assert.rejects(Download.open(fileUrl(name), { headers: { Range: 'bytes=0-' } }),
    (e) => e.name === 'DownloadError' && e.code === 'INVALID_ARGUMENT');
  dl.free();
});
