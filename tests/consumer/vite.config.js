// The package's worker is an ES module (it imports the wasm glue and uses
// top-level await): workers are bundled as ES modules.
export default {
  base: './',
  worker: { format: 'es' },
  build: { target: 'es2022' },
};
