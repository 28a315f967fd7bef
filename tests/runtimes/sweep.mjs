// The file stores' `sweep(olderThan)`, shared by the Node and Deno tests:
// `store(dir, options)` is the runtime's file store, `contender(file, id)`
// starts lock-child.mjs (see scenarios.mjs). Every file is made by hand or by
// the store, aged with utimes, and the directory is checked after the sweep.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import process from 'node:process';

/** A pid no process has (above Linux's largest pid_max). */
const DEAD_PID = 2147483646;
const HOUR = 3600_000;
const MINUTE = 60_000;

/** The name the default layout gives the data file of `id`. */
export const hex = (id) => createHash('sha256').update(id).digest('hex');

async function age(file, ms = HOUR) {
  const then = new Date(Date.now() - ms);
  await fs.utimes(file, then, then);
}

const listed = async (dir) => (await fs.readdir(dir)).sort();

/**
 * Temporaries and the lock's leftovers: an old record temporary and a dead
 * process's lock temporary go, a fresh one and a live process's stay; a
 * takeover guard goes once the lock it names is gone and stays while it is
 * there; nothing the store did not write is touched, nor a link's target.
 */
export async function sweepsTemporaries(store, dir) {
  await fs.mkdir(dir, { recursive: true });
  const files = store(dir);
  await files.sweep(0); // nothing to do
  const write = async (name, text, ms) => {
    await fs.writeFile(`${dir}/${name}`, text);
    if (ms !== 0) await age(`${dir}/${name}`, ms);
  };
  const kept = hex('kept');
  await files.write('kept', 0, new Uint8Array(100).fill(1));
  await files.putRecord('kept', new Uint8Array([1, 2, 3]));
  await age(`${dir}/${kept}`);
  await age(`${dir}/${kept}.record`);
  const [oldRecord, freshRecord, deadLock, liveLock, gone, present] = Array.from({ length: 6 }, () => randomUUID());
  await write(`${kept}.record.${oldRecord}.tmp`, 'interrupted');
  await write(`${kept}.record.${freshRecord}.tmp`, 'being written', 0);
  await write(`${kept}.lock.${deadLock}.tmp`, `${DEAD_PID}\n${deadLock}\n`);
  // The parent process (the test runner, or the shell) is alive.
  await write(`${kept}.lock.${liveLock}.tmp`, `${process.ppid}\n${liveLock}\n`);
  await write(`${kept}.lock.${gone}.takeover`, `${DEAD_PID}\n${randomUUID()}\n`);
  // A dead process's lock, and the guard of a taker that died: the guard stays with its lock.
  const locked = hex('locked');
  await files.write('locked', 0, new Uint8Array(10));
  await files.putRecord('locked', new Uint8Array([4]));
  await write(`${locked}.lock`, `${DEAD_PID}\n${present}\n`);
  await write(`${locked}.lock.${present}.takeover`, `${DEAD_PID}\n${randomUUID()}\n`);
  // Not the store's: a file of another name, and a link named as a data file to an old file outside.
  await write('notes.txt', 'mine');
  const outside = `${dir}-victim`;
  await fs.writeFile(outside, 'keep');
  await age(outside);
  await fs.symlink(outside, `${dir}/${hex('link')}`);
  const then = new Date(Date.now() - HOUR);
  await fs.lutimes?.(`${dir}/${hex('link')}`, then, then).catch(() => {}); // where the runtime can

  await files.sweep(MINUTE);
  assert.deepEqual(await listed(dir), [
    kept, `${kept}.lock.${liveLock}.tmp`, `${kept}.record`, `${kept}.record.${freshRecord}.tmp`,
    hex('link'), locked, `${locked}.lock`, `${locked}.lock.${present}.takeover`, `${locked}.record`, 'notes.txt',
  ].sort());
  assert.equal(await fs.readFile(outside, 'utf8'), 'keep');
  await fs.rm(outside);
}

/**
 * Data files: one no record claims and last written long ago goes (with a
 * dead process's lock on it), one with its record or written recently stays,
 * and one whose lock a live process holds stays until that process lets go.
 * With `options.path` the store cannot list its files and sweeps nothing.
 */
export async function sweepsOrphanData(store, contender, dir) {
  await fs.mkdir(dir, { recursive: true });
  const files = store(dir);
  await store(`${dir}/none`).sweep(0); // no directory: nothing to do
  const data = (id) => `${dir}/${hex(id)}`;
  const bytes = new Uint8Array(1000).fill(9);
  for (const id of ['orphan', 'kept', 'fresh', 'held', 'crashed']) await files.write(id, 0, bytes);
  await files.putRecord('kept', new Uint8Array([1, 2, 3]));
  await fs.writeFile(`${data('crashed')}.lock`, `${DEAD_PID}\n${randomUUID()}\n`);
  for (const id of ['orphan', 'kept', 'held', 'crashed']) await age(data(id));
  await age(`${data('kept')}.record`);
  await age(`${data('crashed')}.lock`);
  const holder = contender(data('held'), 'held');
  try {
    assert.equal(await holder.next(), 'ready');
    holder.say('go');
    assert.equal(await holder.next(), 'won');

    await store(dir, { path: (id) => data(id) }).sweep(0);
    assert.equal((await listed(dir)).length, 8, 'a store given options.path swept files');

    await files.sweep(MINUTE);
    assert.deepEqual(await listed(dir), [
      data('kept'), `${data('kept')}.record`, data('fresh'), data('held'), `${data('held')}.lock`,
    ].map((f) => f.slice(dir.length + 1)).sort());
    assert.equal((await fs.stat(data('kept'))).size, 1000);

    // Once the holder lets go, its orphan goes too.
    holder.say('release');
    assert.equal(await holder.next(), 'released');
  } finally {
    await holder.end();
  }
  await files.sweep(MINUTE);
  assert.deepEqual(await listed(dir), [hex('kept'), `${hex('kept')}.record`, hex('fresh')].sort());
}
