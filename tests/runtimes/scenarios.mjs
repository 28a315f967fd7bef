// Scenarios the Node and Deno tests share; each runtime brings its own way to
// start child.mjs in a fresh process: `child(url, dir)` returning
// `{ proc, events, exit }` (`proc.kill(signal)`, `exit` settling with
// `{ code, signal, stderr }`).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { MiB, clearLog, configure, fileUrl, gets, sha256, unique, until } from '../fault-server/client.mjs';

/** What child.mjs downloads with. */
const CONNECTIONS = 3;
const BLOCK = 4 * MiB;

export async function blobSha256(blob) {
  const hash = createHash('sha256');
  for await (const chunk of blob.stream()) hash.update(chunk);
  return hash.digest('hex');
}

/**
 * A process killed (SIGKILL) at about 30 % is resumed by a fresh one from the
 * store in `dir` (reported as `storeName`): it finds what was stored, asks past byte 0 for exactly
 * the rest, and at most one block per connection was ever fetched twice.
 */
export async function killedThenResumed(child, dir, runtime, storeName = 'file') {
  const name = unique(`${runtime}-killed`);
  const size = 48 * MiB + 4321;
  // 4 MiB/s per connection: the first process is killed a few seconds in.
  await configure(name, `size=${size}&seed=42&throttle=${4 * MiB}`);
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
  assert.equal(opened.store, storeName);
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
}

/** Headers pages may not set (User-Agent, Cookie, Referer) reach the server from `Download`. */
export async function headersAreSent(Download, runtime) {
  const name = unique(`${runtime}-headers`);
  await configure(name, `size=${MiB}&seed=44`);
  const sent = { referer: 'http://127.0.0.1/r', cookie: `sid=${runtime}`, 'user-agent': `rf-${runtime}/1`, 'x-trace': runtime };
  const dl = await Download.open(fileUrl(name), { headers: sent });
  assert.equal(await dl.start(), 'complete');
  const [served] = await gets(name);
  assert.deepEqual(served.headers, sent);
  await assert.rejects(Download.open(fileUrl(name), { headers: { Range: 'bytes=0-' } }),
    (e) => e.name === 'DownloadError' && e.code === 'INVALID_ARGUMENT');
  dl.free();
}
