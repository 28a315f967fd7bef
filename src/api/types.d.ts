/** Where the blocks of a download are stored. 'opfs' writes need a dedicated worker. */
export type StoreKind = 'auto' | 'opfs' | 'indexeddb' | 'memory';

/**
 * A store of your own (a file system, KV, the Cache API, a Map): a plain object
 * whose methods may return values or promises. One file per download, written
 * at byte offsets, plus an opaque record per download. resumable-fetch calls
 * `write` and only then `putRecord` for the bytes that record claims: a store
 * must not make a record durable before the bytes written ahead of it. A thrown
 * error named 'QuotaExceededError' (or with code 'ENOSPC') pauses the download
 * with QUOTA_EXCEEDED.
 */
export interface CustomStore {
  /** What `dl.store` and `Download.list()` report. Default 'custom'. */
  readonly name?: string;
  /**
   * The record last put for `id` (its bytes as any BufferSource: a Uint8Array,
   * an ArrayBuffer, another typed array or a DataView), or null/undefined when
   * there is none. Anything else is INVALID_ARGUMENT, and nothing is deleted.
   */
  getRecord(id: string): Promise<BufferSource | null | undefined> | BufferSource | null | undefined;
  /** Replaces the record of `id`. */
  putRecord(id: string, record: Uint8Array): Promise<void> | void;
  /** Every record stored (those of other libraries are not expected here), as BufferSources. */
  records(): Promise<BufferSource[]> | BufferSource[];
  /** Writes `data` at byte `offset` of the file of `id` (growing it as needed). */
  write(id: string, offset: number, data: Uint8Array): Promise<void> | void;
  /** Exactly `length` bytes at byte `offset` of the file of `id`. */
  read(id: string, offset: number, length: number): Promise<Uint8Array> | Uint8Array;
  /** Deletes the record and the file of `id`; deleting nothing is not an error. */
  delete(id: string): Promise<void> | void;
  /** Optional: the first `size` bytes of the file as a Blob, ideally disk-backed.
   * Without it, `blob()` reads the file into memory. */
  file?(id: string, size: number): Promise<Blob> | Blob;
  /**
   * Optional: the length in bytes of the data stored for `id` (null/undefined:
   * none). A record is trusted no further than this when it is loaded, so a
   * record that outlived its data is downloaded again. Without it, the last
   * claimed byte of each piece is read back instead.
   */
  size?(id: string): Promise<number | null | undefined> | number | null | undefined;
  /**
   * Optional: the one-writer lock of `id` across processes sharing this store.
   * Resolves a release function when this process now holds it, or null when
   * another process does (the call fails with LOCKED). A throw is
   * STORAGE_FAILED. Called when a download starts, is cancelled or removed,
   * after this context's own lock (and the Web Lock where there is one); the
   * release is called when that ends, and if it throws or rejects, that is
   * logged.
   */
  lock?(id: string): Promise<(() => void | Promise<void>) | null>;
  /**
   * Optional: removes what no record claims and nothing wrote to for
   * `olderThan` milliseconds (the leftovers of a delete() or write() a crash
   * cut short, temporary files). Download.prune() calls it after removing
   * stale downloads, only while no download is written to in this context;
   * other processes sharing the store must be kept out by the store itself.
   */
  sweep?(olderThan: number): Promise<void> | void;
}

/** Which stores `Download.list()` and `Download.remove()` look in. Default: every built-in one. */
export interface StoreSelection {
  store?: StoreKind | CustomStore;
}

export interface PruneOptions extends StoreSelection {
  /** Partial downloads not written to for this many milliseconds are removed. */
  olderThan: number;
}

export interface DownloadOptions {
  /** The key the download is stored under. Default: the URL without its fragment. */
  id?: string;
  /** Default 'auto': OPFS in a dedicated worker, else IndexedDB where it can be opened, else memory. */
  store?: StoreKind | CustomStore;
  /** Parallel range requests, 1 to 16. Default 4. */
  connections?: number;
  /**
   * Bytes per request and per stored block, 1 KiB to 1 GiB. Default 8 MiB,
   * and 16 MiB for the blocks IndexedDB takes whole on a fast network.
   */
  blockSize?: number;
  /**
   * Extra request headers. Range and the connection's own headers are rejected;
   * so are, in browsers, those pages may not set (Cookie, Referer, User-Agent…),
   * which Node, Deno and workerd send.
   */
  headers?: Record<string, string> | [string, string][] | Headers;
  credentials?: RequestCredentials;
  referrer?: string;
  /** Consecutive failed attempts tolerated before an error, 0 to 100. Default 5. */
  retries?: number;
  /** A body with no new byte for this long is aborted and retried. Default 30000. */
  stallTimeoutMs?: number;
  /**
   * Requests one `start()` may send (retries included) before it resolves
   * 'paused', for runtimes that cap subrequests per invocation, such as
   * Cloudflare Workers (50 on the free plan): the next invocation resumes.
   * At least 2. Default: no limit.
   */
  maxRequests?: number;
  /**
   * The digest the finished file must have, in Subresource Integrity syntax
   * ('sha256-<base64>', also sha384/sha512; the strongest given counts). Checked
   * over the stored file at completion; a mismatch discards it and fails with
   * INTEGRITY_MISMATCH. A server's Repr-Digest header is checked too.
   */
  integrity?: string;
  /** The name `save()` uses. Default: Content-Disposition, else the URL's last segment. */
  filename?: string;
  /** When the file on the server changed: start over (default) or fail with SERVER_CHANGED. */
  onServerChange?: 'restart' | 'fail';
  /**
   * Run the download in a dedicated worker the package starts (one per page),
   * where 'auto' stores in OPFS; this Download is then a proxy. Not with a custom store.
   */
  worker?: boolean;
}

export interface DownloadProgress {
  received: number;
  total: number | undefined;
  bytesPerSecond: number;
  etaSeconds: number | undefined;
}

export interface DownloadRestart {
  reason: 'server-changed' | 'ranges-ignored';
  message: string;
}

/** 'offline': running, but holding still until the network is back. */
export type DownloadState = 'idle' | 'running' | 'offline' | 'paused' | 'complete' | 'failed';

export interface DownloadInfo {
  id: string;
  url: string;
  received: number;
  total: number | undefined;
  state: 'complete' | 'partial';
  /** 'opfs', 'indexeddb', 'memory', or a custom store's name. */
  store: string;
  filename: string;
  /** When the download was first stored, and last written (ms since the epoch). */
  createdAt: number;
  updatedAt: number;
}

export type DownloadErrorCode =
  | 'NETWORK' | 'HTTP_STATUS' | 'CORS_HEADERS_HIDDEN' | 'SERVER_CHANGED' | 'BAD_RESPONSE'
  | 'QUOTA_EXCEEDED' | 'STORAGE_UNAVAILABLE' | 'STORAGE_CORRUPT' | 'STORAGE_FAILED'
  | 'INTEGRITY_MISMATCH' | 'INVALID_ARGUMENT' | 'INVALID_STATE' | 'LOCKED' | 'ABORTED' | 'INTERNAL';

/** Every promise of this API rejects with a DownloadError. */
export interface DownloadError extends Error {
  name: 'DownloadError';
  code: DownloadErrorCode;
}
