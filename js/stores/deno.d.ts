import type { CustomStore } from '../resumable_fetch.js';

export interface DenoFileStoreOptions {
  /** What `dl.store` and `Download.list()` report (default 'file'). */
  name?: string;
  /** The data file's path for a download id; its record is this path plus `.record`. */
  path?: (id: string) => string | Promise<string>;
}

/** A store on Deno's file system: one data file written at offsets, plus a record file, per download. */
export function denoFileStore(dir: string, options?: DenoFileStoreOptions): CustomStore;
