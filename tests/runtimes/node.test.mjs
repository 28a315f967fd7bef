// The npm package in Node, as an application uses it (pkg/node.js, the
// file store of pkg/stores/node.js), against the fault server on 127.0.0.1:
//   FAULT_SERVER=http://127.0.0.1:PORT node --test tests/runtimes/node.test.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import init, { Download } from '../../pkg/node.js';
import { fileStore } from '../../pkg/stores/node.js';
import { MiB, configure, fileUrl, gets, sha256, unique, until } from '../fault-server/client.mjs';
import { blobSha256, headersAreSent, killedThenResumed, lockIsOneWriter } from './scenarios.mjs';
import { hex, sweepsOrphanData, sweepsTemporaries } from './sweep.mjs';

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));
const LOCK_CHILD = fileURLToPath(new URL('./lock-child.mjs', import.meta.url));

let dir;
before(async () => {
  await init();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rf-node-'));
});
after(() => fs.rm(dir, { recursive: true, force: true }));

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

/** Runs lock-child.mjs: `say(line)` writes to it, `next()` resolves the next line it prints. */
function contender(file, id) {
  const proc = spawn(process.execPath, [LOCK_CHILD, file, id], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiting = [];
  let buffered = '';
  proc.stdout.on('data', (data) => {
    buffered += data;
    const parts = buffered.split('\n');
    buffered = parts.pop();
    for (const line of parts) (waiting.length ? waiting.shift() : (l) => lines.push(l))(line);
  });
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  // An exit before the line comes rejects the wait.
  exit.then(() => { for (const w of waiting.splice(0)) w(null); });
  return {
    pid: proc.pid,
    say: (line) => proc.stdin.write(`${line}\n`),
    next: () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiting.push(r))),
    kill: (signal) => proc.kill(signal),
    end: () => { proc.stdin.end(); return exit; },
    exit,
  };
}

test('the file store\'s lock: one writer across processes, a dead holder\'s lock taken over', { timeout: 120_000 }, () =>
  lockIsOneWriter(contender, path.join(dir, 'locks')));

test('the file store\'s sweep(): old temporaries go, a live process\'s stay, and guards go once their lock has', () =>
  sweepsTemporaries(fileStore, path.join(dir, 'sweep-temporaries')));

test('the file store\'s sweep(): old data no record claims goes, unless a live process holds its lock', { timeout: 30_000 }, () =>
  sweepsOrphanData(fileStore, contender, path.join(dir, 'sweep-data')));

test('the file store removes the record before the data, and size() is the data\'s length', async () => {
  const where = path.join(dir, 'delete-order');
  const data = path.join(where, 'd.bin');
  const store = fileStore(where, { path: () => data });
  assert.equal(await store.size('d'), null, 'no data: no size');
  await store.write('d', 0, new Uint8Array(1000).fill(7));
  await store.putRecord('d', new Uint8Array([1, 2, 3]));
  assert.equal(await store.size('d'), 1000);
  // The store's fs.rm calls, in order (it uses this same module object).
  const removed = [];
  const rm = fs.rm;
  fs.rm = (file, options) => { removed.push(path.basename(file)); return rm(file, options); };
  try {
    await store.delete('d');
  } finally {
    fs.rm = rm;
  }
  assert.deepEqual(removed, ['d.bin.record', 'd.bin']);
  // A record that cannot be removed (a directory in its place): the data stays.
  await store.write('d', 0, new Uint8Array(1000).fill(7));
  await fs.mkdir(`${data}.record/x`, { recursive: true });
  await assert.rejects(store.delete('d'));
  assert.equal((await fs.stat(data)).size, 1000, 'the data was removed while its record stayed');
  await fs.rm(`${data}.record`, { recursive: true });
  await store.delete('d');
  assert.deepEqual(await fs.readdir(where), []);
});

test('the file store never writes through a symbolic link in the data file\'s place', async () => {
  const where = path.join(dir, 'symlink');
  await fs.mkdir(where, { recursive: true });
  const victim = path.join(where, 'victim.txt');
  await fs.writeFile(victim, 'keep');
  await fs.symlink(victim, path.join(where, 'd.bin'));
  const store = fileStore(where, { path: () => path.join(where, 'd.bin') });
  await assert.rejects(store.write('d', 0, new Uint8Array([1, 2, 3, 4, 5])), (e) => e.code === 'ELOOP');
  assert.equal(await fs.readFile(victim, 'utf8'), 'keep');
});

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

test('a process killed mid-download is resumed by a fresh one from the file store', { timeout: 120_000 }, () =>
  killedThenResumed(child, dir, 'node'));

test('Download.prune() sweeps the data of a killed process whose record is gone', { timeout: 120_000 }, async () => {
  const name = unique('node-sweep');
  await configure(name, `size=${24 * MiB}&seed=46&throttle=${4 * MiB}`);
  const where = path.join(dir, name);
  const data = path.join(where, hex(fileUrl(name)));
  const first = child(fileUrl(name), where);
  await until(() => fs.access(`${data}.record`).then(() => true, () => false), 60_000, 'a first piece and its record');
  first.proc.kill('SIGKILL');
  assert.equal((await first.exit).signal, 'SIGKILL');
  assert.ok((await fs.stat(data)).size > 0, 'the killed process stored bytes');
  // What a delete() cut short leaves: the data, and here the dead process's lock.
  await fs.rm(`${data}.record`);
  const removed = await Download.prune({ olderThan: 0, store: fileStore(where) });
  assert.deepEqual(removed, [], 'no record was there to remove');
  assert.deepEqual(await fs.readdir(where), [], 'prune() left the data no record claims');
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

test('headers pages may not set are sent from Node', { timeout: 30_000 }, () => headersAreSent(Download, 'node'));
