import type { CustomStore } from '../resumable_fetch.js';

export interface DenoFileStoreOptions {
  /** What `dl.store` and `Download.list()` report (default 'file'). */
  name?: string;
  /** The data file's path for a download id; its record is this path plus `.record`. */
  path?: (id: string) => string | Promise<string>;
}

/** The file store's methods beyond those every custom store has. */
export interface FileStore extends CustomStore {
  /** The data file's length in bytes, or null when there is none. */
  size(id: string): Promise<number | null>;
  /**
   * The one-writer lock of download `id` across processes, a lock file beside
   * the data file (`<data path>.lock`) holding the owner's pid: resolves a
   * function that releases it before it returns (removing the file only
   * while it is still this process's), or null while another live process
   * (or this one) holds it.
   * A dead process's lock is taken over. For processes of one machine: the
   * pid is checked with kill(pid, 0), so one in another pid namespace (a
   * container sharing the directory) looks dead.
   */
  lock(id: string): Promise<(() => void) | null>;
}

/** A store on Deno's file system: one data file written at offsets, plus a record file, per download. */
export function denoFileStore(dir: string, options?: DenoFileStoreOptions): FileStore;
