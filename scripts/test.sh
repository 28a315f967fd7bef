#!/usr/bin/env bash
# Runs every suite: formatting and lints, the native tests (core and fault
# server), then the wasm suites in Node and headless Chromium against a fault
# server started here on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/env.sh"

step "format and lints"
cargo fmt --all -- --check
cargo clippy -q --workspace --all-targets -- -D warnings
cargo clippy -q --target wasm32-unknown-unknown --lib --tests -p resumable-fetch -p demo-settings -- -D warnings

step "native: core and fault server"
cargo test -q --workspace

step "fault server on 127.0.0.1"
cargo build -q --release -p fault-server
port_file=$(mktemp) other_port_file=$(mktemp)
rm -f "$port_file" "$other_port_file"
e2e=target/e2e
# The browsers' profiles go here, not to /tmp: chromedriver leaves its
# profile behind, and after the 5 GiB test that is 5 GiB on every run.
browsers_tmp=$PWD/target/browsers-tmp
rm -rf "$browsers_tmp"
mkdir -p "$browsers_tmp"
cleanup() {
  kill "$server" 2>/dev/null || true
  rm -f "$port_file" "$other_port_file"
  rm -rf "$browsers_tmp"
  [ -f "$e2e/nginx.pid" ] && kill "$(cat "$e2e/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT
# Two listeners sharing one state: two origins, for cross-origin redirects.
target/release/fault-server --port-file "$port_file" --second-port-file "$other_port_file" \
  >target/fault-server.log 2>&1 &
server=$!
for _ in $(seq 100); do [ -s "$port_file" ] && [ -s "$other_port_file" ] && break; sleep 0.1; done
[ -s "$other_port_file" ] || { echo "the fault server did not start:" >&2; cat target/fault-server.log >&2; exit 1; }
export FAULT_SERVER="http://127.0.0.1:$(cat "$port_file")"
export FAULT_SERVER_OTHER="http://127.0.0.1:$(cat "$other_port_file")"
echo "$FAULT_SERVER and $FAULT_SERVER_OTHER"

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT=120
step "wasm in Node $(node --version): fetch and the memory store"
cargo test --target wasm32-unknown-unknown --test node

step "wasm in $(deno --version | head -n1): the Deno file store keeps the store contract"
# wasm-bindgen-test-runner starts `deno run --allow-read` on a script that
# assumes a `window` (gone in Deno 2); the file store also writes a temporary
# directory and reads its path from the environment.
deno_shim=$PWD/target/deno-shim
mkdir -p "$deno_shim"
echo 'globalThis.window = globalThis;' >"$deno_shim/window.js"
printf '#!/bin/sh\nshift\nexec %q run --allow-read --allow-write --allow-env --allow-net=127.0.0.1 --preload %q "$@"\n' \
  "$(command -v deno)" "$deno_shim/window.js" >"$deno_shim/deno"
chmod +x "$deno_shim/deno"
PATH="$deno_shim:$PATH" WASM_BINDGEN_USE_DENO=1 \
  cargo test --target wasm32-unknown-unknown --test node -- the_file_store_keeps_the_store_contract

step "the npm package in Node $(node --version): pkg/node.js, the file store across processes, and the command line"
scripts/package.sh
node --test tests/runtimes/node.test.mjs tests/runtimes/cli.test.mjs
step "the npm package in $(deno --version | head -n1): the web entry, the Deno file store across processes"
deno test --no-check --no-prompt --allow-net=127.0.0.1 --allow-read --allow-write --allow-env --allow-run \
  tests/runtimes/deno.test.mjs
step "the npm package in workerd $(workerd --version | cut -d' ' -f2): a Worker's modules, the Durable Object store across processes and invocations, and the store contract on it"
# The store contract as one wasm export (tests/contract-wasm) for the contract Worker.
cargo build -q --target wasm32-unknown-unknown -p store-contract-wasm
rm -rf target/contract-wasm
wasm-bindgen --target web --out-dir target/contract-wasm target/wasm32-unknown-unknown/debug/store_contract_wasm.wasm
node --test tests/runtimes/workerd.test.mjs

# The 5 GiB browser test stores 5 GiB in Chromium's profile.
RF_DISK_FREE_GIB=$(df -Pk "$browsers_tmp" | awk 'NR == 2 { print int($4 / 1048576) }')
export RF_DISK_FREE_GIB
if [ "$RF_DISK_FREE_GIB" -lt 12 ]; then
  echo "note: skipping a_5_gib_file_downloads_with_64_bit_offsets in Chromium: ${RF_DISK_FREE_GIB} GiB free under $browsers_tmp, 12 GiB needed"
fi
# Runs a browser suite. Here chromedriver sometimes hangs before the page has
# loaded the tests (the renderer stops answering; no test has run): such a
# run is tried again, twice at most. A suite that ran its tests and failed is
# never run again.
browser_suite() {
  local log
  log=$(mktemp)
  for attempt in 1 2 3; do
    if "$@" 2>&1 | tee "$log"; then
      rm -f "$log"
      return 0
    fi
    if grep -qE '^running [0-9]+ tests?' "$log"; then
      rm -f "$log"
      return 1
    fi
    echo "note: the browser did not start the tests (attempt $attempt of 3)"
  done
  rm -f "$log"
  return 1
}
# The same browser suites, page and dedicated worker, in each engine (the
# runner picks it by driver).
step "wasm in $(chromium --version 2>/dev/null | head -n1), headless: fetch with CORS, IndexedDB, Web Locks; OPFS in a worker"
for suite in browser worker; do
  TMPDIR=$browsers_tmp CHROMEDRIVER=$(command -v chromedriver) browser_suite cargo test --target wasm32-unknown-unknown --test $suite
done
step "wasm in $(firefox-esr --version 2>/dev/null), headless"
for suite in browser worker; do
  TMPDIR=$browsers_tmp GECKODRIVER=$(command -v geckodriver) browser_suite cargo test --target wasm32-unknown-unknown --test $suite
done
step "wasm in WebKitGTK $(dpkg-query -W -f='${Version}' webkit2gtk-driver 2>/dev/null) (MiniBrowser under Xvfb)"
echo "note: WebKitGTK's automation session refuses Blob values in IndexedDB; pieces are stored as bytes there"
echo "note: WebKitGTK has no navigator.storage, so no OPFS: its worker suite checks the fallback to IndexedDB"
for suite in browser worker; do
  TMPDIR=$browsers_tmp SAFARIDRIVER=$(command -v WebKitWebDriver) browser_suite xvfb-run -a cargo test --target wasm32-unknown-unknown --test $suite
done

step "end to end in Chromium (Playwright, nginx, the fault server): the demo page reloaded and relaunched mid-download, reloaded while connections drop, out of quota, and { worker: true } into OPFS across a reload"
scripts/demo-settings.sh
sample_file "$e2e/files/sample.bin" $((256 << 20))
rm -rf "$e2e/logs"
port=$(free_port)
scripts/nginx.sh "$e2e" "$port" --background
BASE_URL="http://127.0.0.1:$port" ACCESS_LOG="$e2e/logs/access.log" SAMPLE="$e2e/files/sample.bin" \
  FILE_PATH=/slow/sample.bin FAULT_SERVER="$FAULT_SERVER" node tests/e2e/reload.mjs
BASE_URL="http://127.0.0.1:$port" ACCESS_LOG="$e2e/logs/access.log" SAMPLE="$e2e/files/sample.bin" \
  FILE_PATH=/files/sample.bin node tests/e2e/quota.mjs
BASE_URL="http://127.0.0.1:$port" ACCESS_LOG="$e2e/logs/access.log" SAMPLE="$e2e/files/sample.bin" \
  FILE_PATH=/slow/sample.bin node tests/e2e/worker.mjs

step "end to end: a Vite app with the npm tarball as a dependency, in Chromium"
# An application's view of the package: installed from `npm pack`, bundled by
# Vite (worker and wasm included), served by the same nginx.
rm -rf target/consumer "$e2e/files/consumer" target/resumable-fetch-*.tgz
cp -r tests/consumer target/consumer
tarball=$(cd target && npm pack ../pkg --silent | tail -n1)
(cd target/consumer && npm install --no-save --no-audit --no-fund --offline "../$tarball" >/dev/null)
node_modules/.bin/vite build target/consumer --outDir "$PWD/$e2e/files/consumer" --emptyOutDir --logLevel warn
BASE_URL="http://127.0.0.1:$port" ACCESS_LOG="$e2e/logs/access.log" SAMPLE="$e2e/files/sample.bin" \
  FILE_PATH=/files/sample.bin APP_PATH=/files/consumer/index.html node tests/e2e/consumer.mjs

step "all suites passed"
