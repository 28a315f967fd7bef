// A custom store on Node's file system: for each download one data file,
// written in place at byte offsets, and one record file beside it.
//
// Order on disk: `write()` syncs the data before it returns, and only then
// does `putRecord()` replace the record (a temporary file, synced, renamed
// over the old one), so a record never claims bytes a crash lost. `delete()`
// removes the record before the data, for the same reason.
//
// `lock(id)` is a lock file beside the data file (`<data path>.lock`) holding
// the owner's pid and a nonce, created whole by link(); see `lockFile()`.
//
// `sweep(olderThan)` removes what a crash left in `dir`; see `sweep()`.

import { createHash, randomUUID } from 'node:crypto';
import { closeSync, constants, openAsBlob, openSync, readFileSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

const RECORD = '.record';
const LOCK = '.lock';
/** The names the default layout writes: a data file, its record or lock, and their temporaries or takeover guards. */
const NAME = /^([0-9a-f]{64})(\.record|\.lock)?(?:\.([^/]+)\.(tmp|takeover))?$/;
/** Opens the data file for reading and writing, never through a symbolic link. */
const DATA_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW;

/**
 * A store keeping downloads in `dir` (created when first written), each under
 * the SHA-256 of its id. `options.path(id)` may instead give the data file's
 * path; its record is that path plus `.record`.
 */
export function fileStore(dir, options = {}) {
  const dataPath = options.path ?? ((id) => path.join(dir, createHash('sha256').update(id).digest('hex')));
  return {
    name: options.name ?? 'file',

    async getRecord(id) {
      return readOrUndefined(dataPath(id) + RECORD);
    },

    async putRecord(id, record) {
      const target = dataPath(id) + RECORD;
      await fs.mkdir(path.dirname(target), { recursive: true });
      // A fresh name opened exclusively: nothing planted there is written through.
      const temporary = `${target}.${randomUUID()}.tmp`;
      const handle = await fs.open(temporary, 'wx');
      try {
        await writeAll(handle, record, 0);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(temporary, target);
    },

    async records() {
      const names = await fs.readdir(dir).catch((e) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
      const found = [];
      for (const name of names.filter((n) => n.endsWith(RECORD))) {
        const record = await readOrUndefined(path.join(dir, name));
        if (record) found.push(record);
      }
      return found;
    },

    async write(id, offset, data) {
      const file = dataPath(id);
      await fs.mkdir(path.dirname(file), { recursive: true });
      const handle = await fs.open(file, DATA_FLAGS, 0o644);
      try {
        await writeAll(handle, data, offset);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    },

    async read(id, offset, length) {
      const handle = await fs.open(dataPath(id), constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        const bytes = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(bytes, done, length - done, offset + done);
          if (bytesRead === 0) break; // shorter than asked: resumable-fetch reports it
          done += bytesRead;
        }
        return bytes.subarray(0, done);
      } finally {
        await handle.close();
      }
    },

    async delete(id) {
      // The record first: a crash in between leaves bytes no record claims, never the reverse.
      const file = dataPath(id);
      await fs.rm(file + RECORD, { force: true });
      await fs.rm(file, { force: true });
    },

    /** The data file's length (null when there is none): no record may claim more. */
    async size(id) {
      try {
        return (await fs.stat(dataPath(id))).size;
      } catch (e) {
        if (e.code === 'ENOENT') return null;
        throw e;
      }
    },

    /** The one-writer lock of `id`: a release function, or null while another live process holds it. */
    async lock(id) {
      return lockFile(dataPath(id) + LOCK);
    },

    /**
     * Removes, of what was last written more than `olderThan` ms ago, what no
     * record claims: data files without a record (a delete() or a first
     * write() cut short), temporaries, and leftovers of the lock.
     */
    async sweep(olderThan) {
      // With `options.path` the files may be anywhere: this store cannot list them.
      if (options.path) return;
      const names = await fs.readdir(dir).catch((e) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
      const ids = new Map();
      for (const name of names) {
        const match = NAME.exec(name);
        if (match) ids.set(match[1], [...(ids.get(match[1]) ?? []), match]);
      }
      const old = async (name) => {
        const stat = await fs.lstat(path.join(dir, name)).catch((e) => (e.code === 'ENOENT' ? null : Promise.reject(e)));
        return Boolean(stat?.isFile()) && Date.now() - stat.mtimeMs > olderThan; // a link is never swept
      };
      const remove = (name) => fs.rm(path.join(dir, name), { force: true });
      for (const [hex, files] of ids) {
        const lock = path.join(dir, hex + LOCK);
        const claimed = () => fs.access(path.join(dir, hex + RECORD)).then(() => true,
          (e) => (e.code === 'ENOENT' ? false : Promise.reject(e)));
        let underLock = false;
        for (const [name, , kind, key, suffix] of files) {
          if (!(await old(name))) continue;
          if (suffix === 'takeover' && kind === LOCK) {
            // A guard acts on the lock its first key names, and only while that lock is there.
            // A lock's key never comes back: once that lock is gone, no one acts on the guard again.
            if ((await inspect(lock))?.key !== key.split('.')[0]) await remove(name);
          } else if (suffix === 'tmp' && kind === LOCK) {
            // A lock attempt's temporary holds its pid and nonce, as a lock does: stale once its writer is.
            if ((await inspect(path.join(dir, name)))?.stale) await remove(name);
          } else if (suffix === 'tmp' && kind === RECORD) {
            underLock = true; // putRecord() writes it under the lock
          } else if (!suffix && kind !== RECORD) {
            underLock ||= !(await claimed()); // data no record claims, or a dead process's lock
          }
        }
        if (!underLock) continue;
        // The lock keeps out whoever writes here (a download, a delete); a live holder's files stay.
        const release = await lockFile(lock);
        if (!release) continue;
        try {
          for (const [name, , kind, , suffix] of files) {
            if (kind === RECORD && suffix === 'tmp' && (await old(name))) await remove(name);
          }
          if (!(await claimed()) && (await old(hex))) await remove(hex);
        } finally {
          release(); // removes the lock file, a dead process's included
        }
      }
    },

    /** The finished file as a disk-backed Blob: nothing is read into memory. */
    async file(id, size) {
      const blob = await openAsBlob(dataPath(id));
      return blob.size === size ? blob : blob.slice(0, size);
    },
  };
}

async function writeAll(handle, bytes, offset) {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, offset + done);
    done += bytesWritten;
  }
}

async function readOrUndefined(file) {
  try {
    return new Uint8Array(await fs.readFile(file));
  } catch (e) {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  }
}

// ---- the lock -------------------------------------------------------------------

/** The nonces of this process's locks and lock attempts: a lock or guard with our pid is live only with one of these. */
const ours = new Set();
/** A lock file without a pid is left over once this old: a writer's pid is in it from the start. */
const UNNAMED_STALE_MS = 60_000;
/** Tries before giving up on a lock that keeps changing hands. */
const ATTEMPTS = 8;

/**
 * Takes the lock file `file`: resolves a release function, or null while a
 * live process (this one included) holds it.
 *
 * The file appears whole: the pid and a nonce are written to a temporary file
 * that is then link()ed to `file`, which fails if it exists. A lock whose pid
 * is dead is removed by one process only: the one that links the takeover
 * guard `file.KEY.takeover` (KEY names the stale lock); it removes `file` if
 * it still is that lock, as no one else may. A taker that died leaves its
 * guard, and the next guard is named after it in turn.
 */
async function lockFile(file) {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const nonce = randomUUID();
  const mine = `${file}.${nonce}.tmp`;
  ours.add(nonce);
  let won = false;
  try {
    const handle = await fs.open(mine, 'wx');
    try {
      await handle.writeFile(`${process.pid}\n${nonce}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
      if (await linked(mine, file)) {
        won = true;
        // Synchronous, so the lock is gone when release returns, awaited or not.
        return () => {
          if (!ours.delete(nonce)) return;
          if (nonceInSync(file) === nonce) rmSync(file, { force: true });
        };
      }
      const holder = await inspect(file);
      if (!holder) continue; // released meanwhile
      if (!holder.stale || !(await removeStale(file, holder, mine))) return null;
    }
  } finally {
    await fs.rm(mine, { force: true });
    if (!won) ours.delete(nonce);
  }
  throw new Error(`the lock ${file} kept changing hands`);
}

/** Removes the stale lock `holder` from `file` unless another live process is doing so (then false). */
async function removeStale(file, holder, mine) {
  const walked = [];
  let guard = `${file}.${holder.key}.takeover`;
  for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
    if (await linked(mine, guard)) {
      const now = await inspect(file);
      if (now && now.key === holder.key) await fs.rm(file, { force: true });
      // Once the stale lock is gone no one acts on it again: the guards can go.
      for (const done of [...walked, guard]) await fs.rm(done, { force: true });
      return true;
    }
    const taker = await inspect(guard);
    if (!taker) continue;
    if (!taker.stale) return false;
    walked.push(guard);
    guard = `${file}.${holder.key}.${taker.key}.takeover`;
  }
  throw new Error(`the lock ${file} kept changing hands`);
}

/** The nonce in lock file `file` (undefined when there is none), read synchronously. */
function nonceInSync(file) {
  let fd;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return readFileSync(fd, 'utf8').split('\n')[1];
  } finally {
    closeSync(fd);
  }
}

async function linked(from, to) {
  try {
    await fs.link(from, to);
    return true;
  } catch (e) {
    if (e.code === 'EEXIST') return false;
    throw e;
  }
}

/** Who holds lock file `file` (null when there is none): its key (nonce) and whether it is stale. */
async function inspect(file) {
  let handle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw e;
  }
  try {
    const stat = await handle.stat({ bigint: true });
    const [first, nonce] = (await handle.readFile('utf8')).split('\n');
    const pid = /^\d+$/.test(first) ? Number(first) : 0;
    // Lock files of earlier versions hold a pid only: the file itself is their key
    // (as the Deno store computes it, to the millisecond).
    const key = nonce || `${stat.ino}-${stat.mtimeMs}`;
    let stale;
    if (pid === process.pid) stale = !ours.has(nonce);
    else if (pid > 0) stale = !alive(pid);
    else stale = Date.now() - Number(stat.mtimeMs) > UNNAMED_STALE_MS;
    return { key, stale };
  } finally {
    await handle.close();
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    if (e.code === 'ESRCH') return false;
    if (e.code === 'EPERM') return true; // alive, another user's
    throw e; // e.g. Deno without --allow-run: unknown is not dead
  }
}
