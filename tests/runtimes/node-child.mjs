// One process of the Node tests: downloads URL into a file store in DIR and
// reports on stdout, one JSON object per line: `open` (what was stored),
// `progress`, then `complete` with the SHA-256 of dl.blob().
//   node tests/runtimes/node-child.mjs URL DIR
import { createHash } from 'node:crypto';
import init, { Download } from '../../pkg/node.js';
import { fileStore } from '../../pkg/stores/node.js';

const [url, dir] = process.argv.slice(2);
const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

await init();
const dl = await Download.open(url, { store: fileStore(dir), connections: 3, blockSize: 4 << 20 });
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
