// A custom store on Deno's file system: for each download one data file,
// written in place at byte offsets, and one record file beside it.
//
// Order on disk: `write()` syncs the data before it returns, and only then
// does `putRecord()` replace the record (a temporary file, synced, renamed
// over the old one), so a record never claims bytes a crash lost.
// Needs --allow-read and --allow-write for `dir`.

const RECORD = '.record';
let temporaries = 0;

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
      const temporary = `${target}.${Deno.pid}.${(temporaries += 1)}.tmp`;
      using file = await Deno.open(temporary, { write: true, create: true, truncate: true });
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
      using file = await Deno.open(await dataPath(id), { read: true, write: true, create: true });
      await file.seek(offset, Deno.SeekMode.Start);
      await writeAll(file, data);
      await file.syncData();
    },

    async read(id, offset, length) {
      using file = await Deno.open(await dataPath(id), { read: true });
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
      const file = await dataPath(id);
      for (const path of [file, file + RECORD]) {
        await Deno.remove(path).catch((e) => {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        });
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
