// The npm package in Deno 2 (the web entry, and pkg/stores/deno.js), against
// the fault server on 127.0.0.1:
//   FAULT_SERVER=http://127.0.0.1:PORT deno test --allow-net=127.0.0.1 \
//     --allow-read --allow-write --allow-env --allow-run tests/runtimes/deno.test.mjs
import assert from 'node:assert/strict';
import init, { Download } from '../../pkg/resumable_fetch.js';
import { denoFileStore } from '../../pkg/stores/deno.js';
import { MiB, configure, fileUrl, gets, sha256, unique } from '../fault-server/client.mjs';
import { blobSha256, headersAreSent, killedThenResumed, lockIsOneWriter } from './scenarios.mjs';
import { sweepsOrphanData, sweepsTemporaries } from './sweep.mjs';

const CHILD = new URL('./child.mjs', import.meta.url).pathname;
const LOCK_CHILD = new URL('./lock-child.mjs', import.meta.url).pathname;

await init();
const dir = await Deno.makeTempDir({ prefix: 'rf-deno-' });

/** Runs child.mjs in a fresh Deno process; `events` collects what it reports. */
function child(url, store) {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ['run', '--allow-net=127.0.0.1', '--allow-read', '--allow-write', '--allow-env', '--allow-run', CHILD, url, store],
    stdout: 'piped',
    stderr: 'piped',
  }).spawn();
  const events = [];
  const lines = (async () => {
    let buffered = '';
    for await (const text of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      const parts = buffered.split('\n');
      buffered = parts.pop();
      for (const line of parts) if (line) events.push(JSON.parse(line));
    }
  })();
  const stderr = new Response(proc.stderr).text();
  const exit = Promise.all([proc.status, lines, stderr]).then(([status, , text]) => ({ ...status, stderr: text }));
  return { proc, events, exit };
}

/** Runs lock-child.mjs in Deno (or in Node: `node`); `say(line)` writes to it, `next()` resolves the next line it prints. */
function contender(file, id, node = false) {
  const command = node
    ? new Deno.Command('node', { args: [LOCK_CHILD, file, id], stdin: 'piped', stdout: 'piped' })
    : new Deno.Command(Deno.execPath(), {
      args: ['run', '--allow-read', '--allow-write', '--allow-run', LOCK_CHILD, file, id],
      stdin: 'piped',
      stdout: 'piped',
    });
  const proc = command.spawn();
  const writer = proc.stdin.getWriter();
  const lines = [];
  const waiting = [];
  const reading = (async () => {
    let buffered = '';
    for await (const text of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      const parts = buffered.split('\n');
      buffered = parts.pop();
      for (const line of parts) (waiting.length ? waiting.shift() : (l) => lines.push(l))(line);
    }
    for (const w of waiting.splice(0)) w(null);
  })();
  const exit = Promise.all([proc.status, reading]).then(([status]) => status);
  return {
    pid: proc.pid,
    say: (line) => writer.write(new TextEncoder().encode(`${line}\n`)),
    next: () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiting.push(r))),
    kill: (signal) => proc.kill(signal),
    end: () => writer.close().then(() => exit),
    exit,
  };
}

Deno.test('the Deno file store\'s lock: one writer across processes, a dead holder\'s lock taken over', () =>
  lockIsOneWriter(contender, `${dir}/locks`));

Deno.test('a Deno and a Node process exclude each other through the same lock file', () =>
  lockIsOneWriter(contender, `${dir}/locks-mixed`, (file, id) => contender(file, id, true)));

Deno.test('the Deno file store\'s sweep(): old temporaries go, a live process\'s stay, and guards go once their lock has', () =>
  sweepsTemporaries(denoFileStore, `${dir}/sweep-temporaries`));

Deno.test('the Deno file store\'s sweep(): old data no record claims goes, unless a live process holds its lock', () =>
  sweepsOrphanData(denoFileStore, contender, `${dir}/sweep-data`));

Deno.test('the Deno file store removes the record before the data, and size() is the data\'s length', async () => {
  const where = `${dir}/delete-order`;
  const data = `${where}/d.bin`;
  const store = denoFileStore(where, { path: () => data });
  assert.equal(await store.size('d'), null, 'no data: no size');
  await store.write('d', 0, new Uint8Array(1000).fill(7));
  await store.putRecord('d', new Uint8Array([1, 2, 3]));
  assert.equal(await store.size('d'), 1000);
  // A record that cannot be removed (a directory in its place): the data stays.
  await Deno.remove(`${data}.record`);
  await Deno.mkdir(`${data}.record/x`, { recursive: true });
  await assert.rejects(store.delete('d'));
  assert.equal((await Deno.stat(data)).size, 1000, 'the data was removed while its record stayed');
  await Deno.remove(`${data}.record`, { recursive: true });
  await store.delete('d');
  assert.deepEqual(await Array.fromAsync(Deno.readDir(where)), []);
});

Deno.test('the Deno file store never writes through a symbolic link in the data file\'s place', async () => {
  const where = `${dir}/symlink`;
  await Deno.mkdir(where, { recursive: true });
  await Deno.writeTextFile(`${where}/victim.txt`, 'keep');
  await Deno.symlink(`${where}/victim.txt`, `${where}/d.bin`);
  const store = denoFileStore(where, { path: () => `${where}/d.bin` });
  await assert.rejects(store.write('d', 0, new Uint8Array([1, 2, 3, 4, 5])));
  assert.equal(await Deno.readTextFile(`${where}/victim.txt`), 'keep');
});

Deno.test('the default store in Deno is memory, and the bytes are the file', async () => {
  const name = unique('deno-memory');
  await configure(name, `size=${10 * MiB + 5}&seed=61`);
  const dl = await Download.open(fileUrl(name), { blockSize: 2 * MiB });
  assert.equal(dl.store, 'memory');
  assert.equal(await dl.start(), 'complete');
  assert.equal(await blobSha256(await dl.blob()), await sha256(name));
  assert.equal((await gets(name)).reduce((n, q) => n + q.sent, 0), 10 * MiB + 5, 'every byte fetched once');
  dl.free();
});

Deno.test('a process killed mid-download is resumed by a fresh one from the Deno file store', () =>
  killedThenResumed(child, dir, 'deno'));

Deno.test('a server that ignores Range: the whole file from 200s, into the Deno file store', async () => {
  const name = unique('deno-no-range');
  const size = 9 * MiB + 3;
  await configure(name, `size=${size}&seed=63&ignore_range=1`);
  const store = denoFileStore(`${dir}/${name}`);
  const dl = await Download.open(fileUrl(name), { store, blockSize: 2 * MiB });
  assert.equal(await dl.start(), 'complete');
  assert.equal(dl.resumable, false);
  assert.equal(await blobSha256(await dl.blob()), await sha256(name));
  assert.ok((await gets(name)).every((q) => q.status === 200), 'the server answered 200s');
  const listed = await Download.list({ store });
  assert.deepEqual(listed.map((e) => [e.id, e.state, e.received]), [[fileUrl(name), 'complete', size]]);
  await Download.remove(fileUrl(name), { store });
  assert.deepEqual(await Download.list({ store }), []);
  assert.deepEqual(await Array.fromAsync(Deno.readDir(`${dir}/${name}`)), [], 'remove() deleted both files');
  dl.free();
});

Deno.test('headers pages may not set are sent from Deno', () => headersAreSent(Download, 'deno'));

globalThis.addEventListener('unload', () => Deno.removeSync(dir, { recursive: true }));
