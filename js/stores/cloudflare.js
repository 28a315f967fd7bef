// A custom store on a Cloudflare Durable Object's storage (`ctx.storage`),
// through its key-value API, so it works on SQLite-backed and key-value-backed
// classes alike, on Cloudflare and in workerd.
//
// Each download is kept as fixed 64 KiB chunks under their own keys (the
// key-value backend refuses values over 128 KiB), a count of chunks for
// delete() and sweep() (stored before the chunks it counts), and its record. A write that starts or ends inside a chunk
// merges with what is stored there. Storage applies writes in the order they
// were made, so the record that write() precedes never claims a lost chunk.

/** Bytes per stored value. */
const CHUNK = 64 * 1024;
/** Keys per get/put/delete call: the key-value API's limit. */
const KEYS = 128;
/** Bytes per `read()` when streaming a stored file: 16 chunks. */
const STREAM_STEP = 16 * CHUNK;

/**
 * A store keeping downloads in a Durable Object's `storage`, under keys
 * starting with `options.prefix` (default `'rf:'`).
 */
export function durableObjectStore(storage, options = {}) {
  const prefix = options.prefix ?? 'rf:';
  const recordKey = (id) => `${prefix}r:${id}`;
  const countKey = (id) => `${prefix}n:${id}`;
  const chunkKey = (id, index) => `${prefix}c:${id}:${index}`;

  /** Deletes every chunk below the count of `id`, then the count. */
  async function deleteChunks(id) {
    const count = (await storage.get(countKey(id))) ?? 0;
    for (let batch = 0; batch < count; batch += KEYS) {
      await storage.delete(range(batch, Math.min(count, batch + KEYS)).map((i) => chunkKey(id, i)));
    }
    await storage.delete(countKey(id));
  }

  async function read(id, offset, length) {
    const bytes = new Uint8Array(length);
    const first = Math.floor(offset / CHUNK);
    const last = Math.floor((offset + length - 1) / CHUNK);
    let done = 0;
    for (let batch = first; batch <= last && length > 0; batch += KEYS) {
      const indexes = range(batch, Math.min(last + 1, batch + KEYS));
      const found = await storage.get(indexes.map((i) => chunkKey(id, i)));
      for (const index of indexes) {
        const chunk = found.get(chunkKey(id, index));
        const from = Math.max(offset, index * CHUNK) - index * CHUNK;
        const wanted = Math.min(CHUNK - from, length - done);
        const part = chunk instanceof Uint8Array ? chunk.subarray(from, from + wanted) : new Uint8Array(0);
        bytes.set(part, done);
        done += part.length;
        // A missing or short chunk ends what is stored: resumable-fetch reports the short read.
        if (part.length < wanted) return bytes.subarray(0, done);
      }
    }
    return bytes.subarray(0, done);
  }

  return {
    name: options.name ?? 'durable-object',

    async getRecord(id) {
      return storage.get(recordKey(id));
    },

    async putRecord(id, record) {
      await storage.put(recordKey(id), record);
    },

    async records() {
      return [...(await storage.list({ prefix: `${prefix}r:` })).values()];
    },

    async write(id, offset, data) {
      if (data.length === 0) return;
      const end = offset + data.length;
      const first = Math.floor(offset / CHUNK);
      const last = Math.floor((end - 1) / CHUNK);
      const edges = [...new Set([first, last])].filter((i) => offset > i * CHUNK || end < (i + 1) * CHUNK);
      const stored = await storage.get([countKey(id), ...edges.map((i) => chunkKey(id, i))]);
      // The count goes first, so that every chunk stored is below it even when a write is
      // cut short: delete() and sweep() find them all (size() allows missing last chunks).
      const count = stored.get(countKey(id));
      let entries = typeof count === 'number' && count > last ? {} : { [countKey(id)]: last + 1 };
      let pending = Object.keys(entries).length;
      for (let index = first; index <= last; index += 1) {
        const start = index * CHUNK;
        const from = Math.max(offset, start);
        const to = Math.min(end, start + CHUNK);
        // slice(), not subarray(): storage serializes a view's whole buffer.
        let value = data.slice(from - offset, to - offset);
        const old = stored.get(chunkKey(id, index));
        if (edges.includes(index) && old instanceof Uint8Array) {
          value = new Uint8Array(Math.max(old.length, to - start));
          value.set(old);
          value.set(data.subarray(from - offset, to - offset), from - start);
        }
        entries[chunkKey(id, index)] = value;
        pending += 1;
        if (pending === KEYS) {
          await storage.put(entries);
          entries = {};
          pending = 0;
        }
      }
      if (pending > 0) await storage.put(entries);
    },

    read,

    /** Where the stored bytes end: the last chunk's end (null when nothing is stored). */
    async size(id) {
      const count = (await storage.get(countKey(id))) ?? 0;
      // The last chunks may be missing (a delete cut short): look back for the last one stored.
      for (let end = count; end > 0; end -= KEYS) {
        const indexes = range(Math.max(0, end - KEYS), end);
        const found = await storage.get(indexes.map((i) => chunkKey(id, i)));
        for (const index of indexes.reverse()) {
          const chunk = found.get(chunkKey(id, index));
          if (chunk instanceof Uint8Array) return index * CHUNK + chunk.length;
        }
      }
      return null;
    },

    async delete(id) {
      // The record first, so that no record claims a chunk being deleted; the count last, so
      // that sweep() finds what a crash in between leaves.
      await storage.delete(recordKey(id));
      await deleteChunks(id);
    },

    /**
     * Removes the chunks and count of each id with no record: a delete() cut
     * short. Storage keeps no times, so `olderThan` is not used, and none is
     * needed: Download.prune() calls this only while no download runs in this
     * JS context, the one context writing this object's storage, and input
     * gates hold other events while these storage calls run. (Were a fresh
     * download running, its first chunks would be taken: they come before its
     * first record.) Chunks above the count, which an earlier version's write()
     * cut short could leave, are not found.
     */
    async sweep() {
      const counts = `${prefix}n:`;
      for (let after; ;) {
        const found = await storage.list({ prefix: counts, limit: KEYS, ...(after && { startAfter: after }) });
        const ids = [...found.keys()].map((key) => key.slice(counts.length));
        if (ids.length === 0) return;
        const records = await storage.get(ids.map(recordKey));
        for (const id of ids) if (!records.has(recordKey(id))) await deleteChunks(id);
        if (ids.length < KEYS) return;
        after = countKey(ids.at(-1));
      }
    },

    /**
     * The first `size` stored bytes of `id` as a stream, read 1 MiB at a time:
     * a Worker's way to serve or copy a download larger than its memory.
     */
    stream(id, size) {
      let offset = 0;
      return new ReadableStream({
        async pull(controller) {
          if (offset >= size) return controller.close();
          const length = Math.min(STREAM_STEP, size - offset);
          const bytes = await read(id, offset, length);
          if (bytes.length !== length) {
            throw new Error(`resumable-fetch: ${size - offset} bytes of ${id} at ${offset} are not stored`);
          }
          offset += length;
          controller.enqueue(bytes);
        },
      }, { highWaterMark: 0 });
    },
  };
}

function range(from, to) {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
