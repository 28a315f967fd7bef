// The npm package in Deno 2 (the web entry, and pkg/stores/deno.js), against
// the fault server on 127.0.0.1:
//   FAULT_SERVER=http://127.0.0.1:PORT deno test --allow-net=127.0.0.1 \
//     --allow-read --allow-write --allow-env --allow-run tests/runtimes/deno.test.mjs
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import init, { Download } from '../../pkg/resumable_fetch.js';
import { denoFileStore } from '../../pkg/stores/deno.js';
import { MiB, clearLog, configure, fileUrl, gets, sha256, unique, until } from './fault.mjs';

const CHILD = new URL('./child.mjs', import.meta.url).pathname;
/** What child.mjs downloads with. */
const CONNECTIONS = 3;
const BLOCK = 4 * MiB;

await init();
const dir = await Deno.makeTempDir({ prefix: 'rf-deno-' });

async function blobSha256(blob) {
  const hash = createHash('sha256');
  for await (const chunk of blob.stream()) hash.update(chunk);
  return hash.digest('hex');
}

/** Runs child.mjs in a fresh Deno process; `events` collects what it reports. */
function child(url, store) {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ['run', '--allow-net=127.0.0.1', '--allow-read', '--allow-write', '--allow-env', CHILD, url, store],
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

Deno.test('a process killed mid-download is resumed by a fresh one from the Deno file store', async () => {
  const name = unique('deno-killed');
  const size = 48 * MiB + 77;
  await configure(name, `size=${size}&seed=62&throttle=${4 * MiB}`);
  const store = `${dir}/${name}`;

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
  const stored = opened.received;
  assert.equal(opened.store, 'file');
  assert.ok(stored > 0 && stored < size, `the fresh process found ${stored} bytes stored`);
  assert.equal(complete.size, size);
  assert.equal(complete.sha256, await sha256(name));
  const resumed = await gets(name);
  assert.ok(resumed.every((q) => q.status === 206 && q.start > 0), 'the fresh process asked past byte 0 only');
  const servedAfter = resumed.reduce((n, q) => n + q.sent, 0);
  assert.equal(servedAfter, size - stored, 'the fresh process fetched exactly what was missing');
  const again = before.reduce((n, q) => n + q.sent, 0) + servedAfter - size;
  assert.ok(again <= CONNECTIONS * BLOCK, `${again} bytes were fetched twice, more than one block per connection`);
});

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

Deno.test('headers pages may not set are sent from Deno', async () => {
  const name = unique('deno-headers');
  await configure(name, `size=${MiB}&seed=64`);
  const headers = { 'User-Agent': 'rf-deno/1', Cookie: 'sid=d', Referer: 'http://127.0.0.1/r' };
  const dl = await Download.open(fileUrl(name), { headers });
  assert.equal(await dl.start(), 'complete');
  const [served] = await gets(name);
  assert.deepEqual(served.headers, { referer: 'http://127.0.0.1/r', cookie: 'sid=d', 'user-agent': 'rf-deno/1' });
  dl.free();
});

globalThis.addEventListener('unload', () => Deno.removeSync(dir, { recursive: true }));
