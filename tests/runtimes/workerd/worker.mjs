// The Worker the workerd tests run (tests/runtimes/workerd.test.mjs): the npm
// package as modules of a Worker, with the .wasm as a compiled module, and a
// Durable Object that downloads into its own storage.
//
//   GET  /memory?url=U&headers=JSON one invocation, the default memory store:
//                                   { store, state, resumable, size, sha256 }
//   POST /do/NAME/run?url=U&...     into the Durable Object NAME's storage; the
//                                   response is one JSON event per line: open,
//                                   progress, then paused or complete
//   POST /do/NAME/list, /do/NAME/remove?id=ID, GET /do/NAME/file?id=ID&size=N,
//   GET  /do/NAME/size?id=ID        { size }: the store's size(ID)
//   POST /do/NAME/orphans?prefix=P&count=N&size=S  N ids P0, P1, … of S bytes
//                                   each, written through the store, then only
//                                   their record keys deleted (a delete() cut short)
//   POST /do/NAME/sweep, GET /do/NAME/keys  the store's sweep(0), then
//                                   { keys }: every key in the storage, sorted

import { DurableObject } from 'cloudflare:workers';
import init, { Download } from './resumable_fetch.js';
import wasm from './resumable_fetch_bg.wasm';
import { durableObjectStore } from './stores/cloudflare.js';

let exports;
/** The instance's exports, instantiated once per isolate from the compiled module. */
async function ready() {
  exports ??= await init({ module_or_path: wasm });
  return exports;
}

const json = (value, status = 200) => Response.json(value, { status });

async function sha256(stream) {
  const digest = new crypto.DigestStream('SHA-256');
  await stream.pipeTo(digest);
  return [...new Uint8Array(await digest.digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/memory') {
      await ready();
      const headers = JSON.parse(url.searchParams.get('headers') ?? '{}');
      const dl = await Download.open(url.searchParams.get('url'), { blockSize: 2 << 20, headers });
      const state = await dl.start();
      const blob = await dl.blob();
      const result = { store: dl.store, state, resumable: dl.resumable, size: blob.size, sha256: await sha256(blob.stream()) };
      dl.free();
      return json(result);
    }
    const match = /^\/do\/([^/]+)\//.exec(url.pathname);
    if (match) return env.DOWNLOADS.get(env.DOWNLOADS.idFromName(decodeURIComponent(match[1]))).fetch(request);
    return json({ error: `no route ${url.pathname}` }, 404);
  },
};

/** Keeps downloads in its storage; each request is a fresh invocation of the library. */
export class Downloads extends DurableObject {
  store = durableObjectStore(this.ctx.storage);

  async fetch(request) {
    const url = new URL(request.url);
    const action = url.pathname.split('/').pop();
    const param = (name) => url.searchParams.get(name);
    try {
      const { memory } = await ready();
      if (action === 'run') return this.run(url, memory);
      if (action === 'list') return json(await Download.list({ store: this.store }));
      if (action === 'remove') {
        await Download.remove(param('id'), { store: this.store });
        return json({ keys: (await this.ctx.storage.list()).size });
      }
      if (action === 'file') return new Response(this.store.stream(param('id'), Number(param('size'))));
      if (action === 'size') return json({ size: await this.store.size(param('id')) });
      if (action === 'orphans') {
        for (let i = 0; i < Number(param('count')); i += 1) {
          const id = `${param('prefix')}${i}`;
          await this.store.write(id, 0, new Uint8Array(Number(param('size'))).fill(i));
          await this.store.putRecord(id, new Uint8Array([1]));
          await this.ctx.storage.delete(`rf:r:${id}`);
        }
        return json({ count: Number(param('count')) });
      }
      if (action === 'sweep') await this.store.sweep(0);
      if (action === 'sweep' || action === 'keys') return json({ keys: [...(await this.ctx.storage.list()).keys()] });
      return json({ error: `no action ${action}` }, 404);
    } catch (e) {
      return json({ error: String(e), code: e.code }, 500);
    }
  }

  /**
   * Downloads `url` with `connections`, `blockSize`, `maxRequests` and
   * `integrity`; the SHA-256 of what is stored comes with `complete` when
   * `hash` is set.
   */
  run(url, memory) {
    const param = (name) => url.searchParams.get(name);
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    const say = (event) => writer.write(new TextEncoder().encode(`${JSON.stringify(event)}\n`));
    const work = async () => {
      const options = { store: this.store, connections: 3, blockSize: 4 << 20 };
      for (const name of ['connections', 'blockSize', 'maxRequests']) {
        if (param(name)) options[name] = Number(param(name));
      }
      if (param('integrity')) options.integrity = param('integrity');
      const dl = await Download.open(param('url'), options);
      say({ event: 'open', received: dl.received, total: dl.total ?? null, store: dl.store });
      dl.onprogress = ({ received, total }) => say({ event: 'progress', received, total });
      const state = await dl.start();
      const end = {
        event: state, received: dl.received, total: dl.total ?? null, resumable: dl.resumable, id: dl.id,
        wasmMemory: memory.buffer.byteLength,
      };
      if (state === 'complete') {
        end.size = dl.received;
        if (param('hash')) end.sha256 = await sha256(this.store.stream(dl.id, dl.received));
      }
      dl.free();
      await say(end);
    };
    work()
      .catch((e) => say({ event: 'error', message: String(e), code: e.code }))
      .finally(() => writer.close());
    return new Response(readable, { headers: { 'content-type': 'application/x-ndjson' } });
  }
}
