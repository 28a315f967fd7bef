// A custom store on Deno's file system: for each download one data file,
// written in place at byte offsets, and one record file beside it.
//
// Order on disk: `write()` syncs the data before it returns, and only then
// does `putRecord()` replace the record (a temporary file, synced, renamed
// over the old one), so a record never claims bytes a crash lost. `delete()`
// removes the record before the data, for the same reason.
// Needs --allow-read and --allow-write for `dir`, and --allow-run for `lock()`.
//
// `lock(id)` is a lock file beside the data file (`<data path>.lock`) holding
// the owner's pid and a nonce, the same as the Node store's (a Node and a Deno
// process exclude each other); see `lockFile()`. Whether a pid is alive is
// asked with kill(pid, 0), which needs --allow-run (Deno lets /proc/<pid> be
// read only with --allow-all).
//
// `sweep(olderThan)` removes what a crash left in `dir`, as the Node store's does.

import process from 'node:process';

const RECORD = '.record';
const LOCK = '.lock';
/** The names the default layout writes: a data file, its record or lock, and their temporaries or takeover guards. */
const NAME = /^([0-9a-f]{64})(\.record|\.lock)?(?:\.([^/]+)\.(tmp|takeover))?$/;

/**
 * A store keeping downloads in `dir` (created when first written), each under
 * the SHA-256 of its id. `options.path(id)` may instead give the data file's
 * path; its record is that path plus `.record`.
 */
export function denoFileStore(dir, options = {}) {
  const dataPath = options.path ?? (async (id) => `${dir}/${await hex(id)}`);
  return {
    name: options.name ?? 'file',

    async getRecord(id) {
      return readOrUndefined((await dataPath(id)) + RECORD);
    },

    async putRecord(id, record) {
      await Deno.mkdir(dir, { recursive: true });
      const target = (await dataPath(id)) + RECORD;
      // A fresh name created exclusively: nothing planted there is written through.
      const temporary = `${target}.${crypto.randomUUID()}.tmp`;
      using file = await Deno.open(temporary, { write: true, createNew: true });
      await writeAll(file, record);
      await file.sync();
      await Deno.rename(temporary, target);
    },

    async records() {
      const found = [];
      try {
        for await (const entry of Deno.readDir(dir)) {
          if (!entry.isFile || !entry.name.endsWith(RECORD)) continue;
          const record = await readOrUndefined(`${dir}/${entry.name}`);
          if (record) found.push(record);
        }
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      return found;
    },

    async write(id, offset, data) {
      await Deno.mkdir(dir, { recursive: true });
      const path = await dataPath(id);
      await refuseLink(path);
      using file = await Deno.open(path, { read: true, write: true, create: true });
      await file.seek(offset, Deno.SeekMode.Start);
      await writeAll(file, data);
      await file.syncData();
    },

    async read(id, offset, length) {
      const path = await dataPath(id);
      await refuseLink(path);
      using file = await Deno.open(path, { read: true });
      await file.seek(offset, Deno.SeekMode.Start);
      const bytes = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = await file.read(bytes.subarray(done));
        if (n === null) break; // shorter than asked: resumable-fetch reports it
        done += n;
      }
      return bytes.subarray(0, done);
    },

    async delete(id) {
      // The record first: a crash in between leaves bytes no record claims, never the reverse.
      const file = await dataPath(id);
      await removeIfThere(file + RECORD);
      await removeIfThere(file);
    },

    /** The data file's length (null when there is none): no record may claim more. */
    async size(id) {
      try {
        return (await Deno.stat(await dataPath(id))).size;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return null;
        throw e;
      }
    },

    /** The one-writer lock of `id`: a release function, or null while another live process holds it. */
    async lock(id) {
      return lockFile((await dataPath(id)) + LOCK);
    },

    /**
     * Removes, of what was last written more than `olderThan` ms ago, what no
     * record claims (the Node store's `sweep()` says more).
     */
    async sweep(olderThan) {
      // With `options.path` the files may be anywhere: this store cannot list them.
      if (options.path) return;
      const ids = new Map();
      try {
        for await (const { name } of Deno.readDir(dir)) {
          const match = NAME.exec(name);
          if (match) ids.set(match[1], [...(ids.get(match[1]) ?? []), match]);
        }
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      const old = async (name) => {
        const stat = await Deno.lstat(`${dir}/${name}`)
          .catch((e) => (e instanceof Deno.errors.NotFound ? null : Promise.reject(e)));
        return Boolean(stat?.isFile) && Date.now() - (stat.mtime?.getTime() ?? Date.now()) > olderThan; // a link is never swept
      };
      const remove = (name) => removeIfThere(`${dir}/${name}`);
      for (const [hex, files] of ids) {
        const lock = `${dir}/${hex}${LOCK}`;
        const claimed = () => Deno.lstat(`${dir}/${hex}${RECORD}`).then(() => true,
          (e) => (e instanceof Deno.errors.NotFound ? false : Promise.reject(e)));
        let underLock = false;
        for (const [name, , kind, key, suffix] of files) {
          if (!(await old(name))) continue;
          if (suffix === 'takeover' && kind === LOCK) {
            // A guard acts on the lock its first key names, and only while that lock is there.
            // A lock's key never comes back: once that lock is gone, no one acts on the guard again.
            if ((await inspect(lock))?.key !== key.split('.')[0]) await remove(name);
          } else if (suffix === 'tmp' && kind === LOCK) {
            // A lock attempt's temporary holds its pid and nonce, as a lock does: stale once its writer is.
            if ((await inspect(`${dir}/${name}`))?.stale) await remove(name);
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
  };
}

async function hex(id) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(id));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function writeAll(file, bytes) {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

async function readOrUndefined(path) {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function removeIfThere(path) {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Deno.open has no O_NOFOLLOW: the data file is refused when a symbolic link is in its place. */
async function refuseLink(path) {
  try {
    if ((await Deno.lstat(path)).isSymlink) throw new Error(`ELOOP: ${path} is a symbolic link`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

// ---- the lock (as in the Node store) --------------------------------------------

/** The nonces of this process's locks and lock attempts: a lock or guard with our pid is live only with one of these. */
const ours = new Set();
/** A lock file without a pid is left over once this old: a writer's pid is in it from the start. */
const UNNAMED_STALE_MS = 60_000;
/** Tries before giving up on a lock that keeps changing hands. */
const ATTEMPTS = 8;

/**
 * Takes the lock file `file`: resolves a release function, or null while a
 * live process (this one included) holds it. The pid and a nonce are written
 * to a temporary file then link()ed to `file`, which fails if it exists; a
 * dead process's lock is removed only by the process that links the takeover
 * guard `file.KEY.takeover` (the Node store's `lockFile()` says more).
 */
async function lockFile(file) {
  await Deno.mkdir(file.slice(0, file.lastIndexOf('/')) || '/', { recursive: true });
  const nonce = crypto.randomUUID();
  const mine = `${file}.${nonce}.tmp`;
  ours.add(nonce);
  let won = false;
  try {
    {
      using temporary = await Deno.open(mine, { write: true, createNew: true });
      await writeAll(temporary, new TextEncoder().encode(`${Deno.pid}\n${nonce}\n`));
      await temporary.sync();
    }
    for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
      if (await linked(mine, file)) {
        won = true;
        // Synchronous, so the lock is gone when release returns, awaited or not.
        return () => {
          if (!ours.delete(nonce)) return;
          if (nonceInSync(file) === nonce) Deno.removeSync(file);
        };
      }
      const holder = await inspect(file);
      if (!holder) continue; // released meanwhile
      if (!holder.stale || !(await removeStale(file, holder, mine))) return null;
    }
  } finally {
    await removeIfThere(mine);
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
      if (now && now.key === holder.key) await removeIfThere(file);
      // Once the stale lock is gone no one acts on it again: the guards can go.
      for (const done of [...walked, guard]) await removeIfThere(done);
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

/** The nonce in lock file `file` (undefined when there is none, or a link is there), read synchronously. */
function nonceInSync(file) {
  try {
    if (Deno.lstatSync(file).isSymlink) return undefined;
    return Deno.readTextFileSync(file).split('\n')[1];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function linked(from, to) {
  try {
    await Deno.link(from, to);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    throw e;
  }
}

/** Who holds lock file `file` (null when there is none): its key (nonce) and whether it is stale. */
async function inspect(file) {
  let opened;
  try {
    await refuseLink(file);
    opened = await Deno.open(file, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  using handle = opened;
  const stat = await handle.stat();
  const bytes = new Uint8Array(256); // a pid and a nonce; more is not a lock of ours
  let length = 0;
  for (;;) {
    const n = length < bytes.length ? await handle.read(bytes.subarray(length)) : null;
    if (n === null) break;
    length += n;
  }
  const [first, nonce] = new TextDecoder().decode(bytes.subarray(0, length)).split('\n');
  const pid = /^\d+$/.test(first) ? Number(first) : 0;
  // Lock files of earlier versions hold a pid only: the file itself is their key
  // (as the Node store computes it).
  const key = nonce || `${stat.ino}-${stat.mtime?.getTime()}`;
  let stale;
  if (pid === Deno.pid) stale = !ours.has(nonce);
  else if (pid > 0) stale = !alive(pid);
  else stale = Date.now() - (stat.mtime?.getTime() ?? 0) > UNNAMED_STALE_MS;
  return { key, stale };
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
