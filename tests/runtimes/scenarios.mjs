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

/** A pid no process has (above Linux's largest pid_max). */
const DEAD_PID = 2147483646;

/**
 * The file store's `lock(id)` across processes. `contender(file, id)` starts
 * lock-child.mjs on data file `file` (see there), `other` another kind of
 * contender (a process of another runtime) that races `contender`'s.
 */
export async function lockIsOneWriter(contender, dir, other = contender) {
  const fs = await import('node:fs/promises');
  await fs.mkdir(dir, { recursive: true });
  const file = `${dir}/race.bin`;
  const lock = `${file}.lock`;
  const holder = async () => Number((await fs.readFile(lock, 'utf8')).split('\n')[0]);
  const gone = () => fs.access(lock).then(() => false, () => true);
  const [a, b] = [contender(file, 'race'), other(file, 'race')];
  assert.deepEqual([await a.next(), await b.next()], ['ready', 'ready']);

  // Both ask at once, many times, half of them with a dead process's lock in place: one wins.
  for (let round = 0; round < 40; round += 1) {
    if (round % 2) await fs.writeFile(lock, String(DEAD_PID));
    a.say('go');
    b.say('go');
    const said = [await a.next(), await b.next()];
    assert.deepEqual([...said].sort(), ['lost', 'won'], `round ${round}: ${said}`);
    const winner = said[0] === 'won' ? a : b;
    assert.equal(await holder(), winner.pid, `round ${round}: the lock file names the winner`);
    winner.say('release');
    assert.equal(await winner.next(), 'released');
    assert.ok(await gone(), `round ${round}: release removed the lock file`);
  }

  // An empty pid (a writer between creating the file and writing its pid) is not taken...
  await fs.writeFile(lock, '');
  b.say('go');
  assert.equal(await b.next(), 'lost', 'a lock file without a pid was taken over at once');
  // ...unless it is old: no writer takes a minute to write its pid.
  const hourAgo = new Date(Date.now() - 3600_000);
  await fs.utimes(lock, hourAgo, hourAgo);
  b.say('go');
  assert.equal(await b.next(), 'won', 'an hour-old lock file without a pid is taken over');
  b.say('release');
  assert.equal(await b.next(), 'released');

  // A holder killed keeps its lock file, which the next process takes over.
  a.say('go');
  assert.equal(await a.next(), 'won');
  a.kill('SIGKILL');
  await a.exit;
  assert.equal(await holder(), a.pid, 'the killed holder left its lock behind');
  b.say('go');
  assert.equal(await b.next(), 'won', 'the lock of a dead process is taken over');
  assert.equal(await holder(), b.pid);

  // Release removes the lock file only while it is the releaser's own.
  await fs.rm(lock);
  const c = contender(file, 'race');
  assert.equal(await c.next(), 'ready');
  c.say('go');
  assert.equal(await c.next(), 'won');
  b.say('release');
  assert.equal(await b.next(), 'released');
  assert.equal(await holder(), c.pid, "a release removed another process's lock");
  c.say('go');
  assert.equal(await c.next(), 'lost', 'a process already holding the lock does not get it twice');
  c.say('release');
  assert.equal(await c.next(), 'released');
  assert.ok(await gone());
  await Promise.all([b.end(), c.end()]);
  const left = (await fs.readdir(dir)).filter((n) => n !== 'race.bin');
  assert.deepEqual(left, [], 'no temporary files are left behind');
}
