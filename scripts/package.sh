#!/usr/bin/env bash
# Builds the npm package into pkg/: wasm-pack (ES module for browsers and
# bundlers), then wasm-opt -Oz from the npm package binaryen.
set -euo pipefail
source "$(dirname "$0")/env.sh"

step "wasm-pack build"
wasm-pack build --release --target web --out-dir pkg --out-name resumable_fetch --no-pack
wasm=pkg/resumable_fetch_bg.wasm
# -Oz twice: the second pass finds more to fold after the first (~400 B
# gzipped). The producers and target_features sections are for linkers only.
wasm-opt -Oz -Oz --strip-producers --strip-target-features --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$wasm" -o "$wasm.opt" && mv "$wasm.opt" "$wasm"
node scripts/package-json.mjs
printf 'pkg/: %s bytes of wasm, %s gzipped\n' "$(stat -c %s "$wasm")" "$(gzip -9c "$wasm" | wc -c)"
