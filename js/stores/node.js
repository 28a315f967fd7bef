// A custom store on Node's file system: for each download one data file,
// written in place at byte offsets, and one record file beside it.
//
// Order on disk: `write()` syncs the data before it returns, and only then
// does `putRecord()` replace the record (a temporary file, synced, renamed
// over the old one), so a record never claims bytes a crash lost.

import { createHash } from 'node:crypto';
import { constants, openAsBlob } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

const RECORD = '.record';
let temporaries = 0;

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
      const temporary = `${target}.${process.pid}.${(temporaries += 1)}.tmp`;
      const handle = await fs.open(temporary, 'w');
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
      const handle = await fs.open(file, constants.O_RDWR | constants.O_CREAT, 0o644);
      try {
        await writeAll(handle, data, offset);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    },

    async read(id, offset, length) {
      const handle = await fs.open(dataPath(id), 'r');
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
      const file = dataPath(id);
      await Promise.all([fs.rm(file, { force: true }), fs.rm(file + RECORD, { force: true })]);
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
