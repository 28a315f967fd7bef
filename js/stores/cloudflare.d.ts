import type { CustomStore } from '../resumable_fetch.js';

/** The key-value methods of a Durable Object's `ctx.storage` this store uses. */
export interface DurableObjectKeyValue {
  get(key: string): Promise<unknown>;
  get(keys: string[]): Promise<Map<string, unknown>>;
  put(key: string, value: unknown): Promise<void>;
  put(entries: Record<string, unknown>): Promise<void>;
  delete(key: string): Promise<boolean>;
  delete(keys: string[]): Promise<number>;
  list(options: { prefix: string }): Promise<Map<string, unknown>>;
}

export interface DurableObjectStoreOptions {
  /** What `dl.store` and `Download.list()` report (default 'durable-object'). */
  name?: string;
  /** The prefix of every key the store writes (default 'rf:'). */
  prefix?: string;
}

export interface DurableObjectStore extends CustomStore {
  /** The stored length of download `id` in bytes (its last chunk's end), or null when nothing is stored. */
  size(id: string): Promise<number | null>;
  /** The first `size` stored bytes of download `id`, read 1 MiB at a time: to serve or copy a file larger than a Worker's memory. */
  stream(id: string, size: number): ReadableStream<Uint8Array>;
}

/** A store in a Durable Object's storage: 64 KiB values, a record and a chunk count per download. */
export function durableObjectStore(storage: DurableObjectKeyValue, options?: DurableObjectStoreOptions): DurableObjectStore;
