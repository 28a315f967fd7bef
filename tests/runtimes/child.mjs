// One process of the Node and Deno tests: downloads URL into the runtime's
// file store in DIR and reports on stdout, one JSON object per line: `open`
// (what was stored), `progress`, then `complete` with the SHA-256 of dl.blob().
//   node tests/runtimes/child.mjs URL DIR
//   deno run --allow-net --allow-read --allow-write tests/runtimes/child.mjs URL DIR
import { createHash } from 'node:crypto';

const deno = typeof globalThis.Deno !== 'undefined';
// Deno loads the web entry (its fetch reads file: URLs), Node the node entry.
const { default: init, Download } = await import(deno ? '../../pkg/resumable_fetch.js' : '../../pkg/node.js');
const store = deno
  ? (await import('../../pkg/stores/deno.js')).denoFileStore
  : (await import('../../pkg/stores/node.js')).fileStore;

const [url, dir] = deno ? Deno.args : process.argv.slice(2);
const say = (event) => console.log(JSON.stringify(event));

await init();
const dl = await Download.open(url, { store: store(dir), connections: 3, blockSize: 4 << 20 });
say({ event: 'open', received: dl.received, total: dl.total ?? null, store: dl.store });
dl.onprogress = ({ received, total }) => say({ event: 'progress', received, total });
await dl.start();
const hash = createHash('sha256');
let size = 0;
for await (const chunk of (await dl.blob()).stream()) {
  hash.update(chunk);
  size += chunk.length;
}
say({ event: 'complete', sha256: hash.digest('hex'), size, received: dl.received });
