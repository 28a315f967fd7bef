// The package's entry in Node: the same API, and an `init()` that reads the
// .wasm beside this file (Node's fetch cannot load file: URLs).
import { readFile } from 'node:fs/promises';
import initModule from './resumable_fetch.js';

export * from './resumable_fetch.js';

/** Loads the wasm module; `input` is as for the web entry's `init()`. */
export default async function init(input) {
  if (input !== undefined) return initModule(input);
  const bytes = await readFile(new URL('./resumable_fetch_bg.wasm', import.meta.url));
  return initModule({ module_or_path: bytes });
}
