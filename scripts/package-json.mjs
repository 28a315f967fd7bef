// Writes pkg/package.json from Cargo.toml's metadata: the npm package
// `resumable-fetch`, an ES module with its TypeScript declarations.
import { readFileSync, writeFileSync, copyFileSync, cpSync } from 'node:fs';

const cargo = readFileSync('Cargo.toml', 'utf8');
const field = (name) => cargo.match(new RegExp(`^${name} = "(.*)"`, 'm'))?.[1];
const pkg = {
  name: 'resumable-fetch',
  version: field('version'),
  description: field('description'),
  license: field('license'),
  repository: { type: 'git', url: field('repository') },
  keywords: ['download', 'resume', 'range', 'indexeddb', 'opfs', 'wasm', 'fetch'],
  type: 'module',
  main: './resumable_fetch.js',
  types: './resumable_fetch.d.ts',
  exports: {
    '.': { types: './resumable_fetch.d.ts', node: './node.js', default: './resumable_fetch.js' },
    './stores/node': { types: './stores/node.d.ts', default: './stores/node.js' },
    './stores/deno': { types: './stores/deno.d.ts', default: './stores/deno.js' },
    './stores/cloudflare': { types: './stores/cloudflare.d.ts', default: './stores/cloudflare.js' },
    './resumable_fetch_bg.wasm': './resumable_fetch_bg.wasm',
    './worker.js': './worker.js',
  },
  files: [
    'resumable_fetch.js', 'resumable_fetch.d.ts', 'resumable_fetch_bg.wasm', 'resumable_fetch_bg.wasm.d.ts',
    'worker.js', 'node.js', 'cli.js', 'stores/', 'snippets/', 'README.md',
  ],
  bin: { 'resumable-fetch': './cli.js' },
  engines: { node: '>=20' },
  sideEffects: false,
};
writeFileSync('pkg/package.json', JSON.stringify(pkg, null, 2) + '\n');
copyFileSync('README.md', 'pkg/README.md');
// The worker `{ worker: true }` starts, beside the module it imports; the
// Node entry, the command line and the ready-made stores.
for (const file of ['worker.js', 'node.js', 'cli.js']) copyFileSync(`js/${file}`, `pkg/${file}`);
cpSync('js/stores', 'pkg/stores', { recursive: true });
