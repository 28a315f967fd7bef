// The dedicated worker that downloads opened with `{ worker: true }` run in.
// The package starts it itself (one per page); it serves the page's
// Download proxies, and stores in OPFS where the browser has it.
import init, { serveDownloads } from './resumable_fetch.js';

await init();
serveDownloads();
