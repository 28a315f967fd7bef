// A page that uses resumable-fetch the way an application does: installed
// from the npm tarball, imported by name, bundled by Vite (worker included).
// tests/e2e/consumer.mjs drives it through `window.download(url, options)`.
import init, { Download } from 'resumable-fetch';

const ready = init();

/** Downloads `url` to completion; resolves with what a test checks. */
window.download = async (url, options) => {
  await ready;
  const dl = await Download.open(url, options);
  const state = await dl.start();
  const blob = await dl.blob();
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  const sha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  const result = { state, store: dl.store, received: dl.received, size: blob.size, sha256 };
  await dl.cancel();
  return result;
};

ready.then(() => {
  document.getElementById('status').textContent = 'ready';
  document.documentElement.dataset.ready = 'true';
});
