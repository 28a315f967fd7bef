// The npm package in Deno 2 (the web entry, and pkg/stores/deno.js), against
// the fault server on 127.0.0.1:
//   FAULT_SERVER=http://127.0.0.1:PORT deno test --allow-net=127.0.0.1 \
//     --allow-read --allow-write --allow-env --allow-run tests/runtimes/deno.test.mjs
import assert from 'node:assert/strict';
import init, { Download } from '../../pkg/resumable_fetch.js';
import { denoFileStore } from '../../pkg/stores/deno.js';
import { MiB, configure, fileUrl, gets, sha256, unique } from '../fault-server/client.mjs';
import { blobSha256, headersAreSent, killedThenResumed } from './scenarios.mjs';

const CHILD = new URL('./child.mjs', import.meta.url).pathname;

await init();
const dir = await Deno.makeTempDir({ prefix: 'rf-deno-' });

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
