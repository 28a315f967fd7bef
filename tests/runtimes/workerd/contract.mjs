// The store contract in workerd (tests/runtimes/workerd.test.mjs): a Worker
// whose Durable Object runs `storeContract` (tests/contract-wasm, built into
// target/contract-wasm/) against the Durable Object store
// (js/stores/cloudflare.js) on its own storage.
//
//   POST /do/NAME/contract?prefix=P  { ok: true }, or 500 and { error }: the breach

import { DurableObject } from 'cloudflare:workers';
import init, { storeContract } from './store_contract_wasm.js';
import wasm from './store_contract_wasm_bg.wasm';
import { durableObjectStore } from './stores/cloudflare.js';

let initialized;
const ready = () => (initialized ??= init({ module_or_path: wasm }));

const json = (value, status = 200) => Response.json(value, { status });

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const match = /^\/do\/([^/]+)\//.exec(url.pathname);
    if (match) return env.DOWNLOADS.get(env.DOWNLOADS.idFromName(decodeURIComponent(match[1]))).fetch(request);
    return json({ error: `no route ${url.pathname}` }, 404);
  },
};

/** Keys per delete call: the key-value API's limit. */
const KEYS = 128;

export class Contract extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    if (!url.pathname.endsWith('/contract')) return json({ error: `no route ${url.pathname}` }, 404);
    const storage = this.ctx.storage;
    const prefix = 'rf:'; // the store's default
    // An id's chunks and count deleted behind the store's back, its record kept.
    const lose = async (id) => {
      const keys = [...(await storage.list({ prefix: `${prefix}c:${id}:` })).keys(), `${prefix}n:${id}`];
      for (let i = 0; i < keys.length; i += KEYS) await storage.delete(keys.slice(i, i + KEYS));
    };
    try {
      await ready();
      await storeContract(durableObjectStore(storage), url.searchParams.get('prefix') ?? 'contract', lose);
      return json({ ok: true });
    } catch (e) {
      return json({ error: String(e?.message ?? e) }, 500);
    }
  }
}
