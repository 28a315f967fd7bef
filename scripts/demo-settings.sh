#!/usr/bin/env bash
# Builds the demo page's settings module (www/settings, Rust with gloo-storage)
# into target/demo-settings/, which nginx.sh serves at /settings/.
set -euo pipefail
source "$(dirname "$0")/env.sh"

step "wasm-pack build www/settings (the demo's remembered settings)"
out=$PWD/target/demo-settings
wasm-pack --quiet build www/settings --release --target web --out-dir "$out" --out-name demo_settings --no-pack
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$out/demo_settings_bg.wasm" -o "$out/demo_settings_bg.wasm"
