// One contender for a file store's lock, in Node or Deno: prints `ready`,
// then for each line on stdin: `go` calls store.lock(ID) and prints `won`,
// `lost` or `error <message>`; `release` calls the release it holds and prints
// `released`. It exits when stdin ends (a lock it still holds stays behind).
//   node tests/runtimes/lock-child.mjs DATA_PATH ID
//   deno run --allow-read --allow-write --allow-run tests/runtimes/lock-child.mjs DATA_PATH ID
import process from 'node:process';
import readline from 'node:readline';

const deno = typeof globalThis.Deno !== 'undefined';
const store = deno
  ? (await import('../../pkg/stores/deno.js')).denoFileStore
  : (await import('../../pkg/stores/node.js')).fileStore;

const [file, id] = deno ? Deno.args : process.argv.slice(2);
const dir = file.slice(0, file.lastIndexOf('/'));
const files = store(dir, { path: () => file });
let release = null;

console.log('ready');
for await (const line of readline.createInterface({ input: process.stdin })) {
  try {
    if (line === 'go') {
      const got = await files.lock(id);
      if (got) release = got;
      console.log(got ? 'won' : 'lost');
    } else if (line === 'release') {
      await release();
      release = null;
      console.log('released');
    }
  } catch (e) {
    console.log(`error ${e && e.message}`);
  }
}
