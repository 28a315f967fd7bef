#!/usr/bin/env bash
# Installs what building and testing resumable-fetch needs, idempotently:
# a Rust toolchain that can target wasm32, wasm-bindgen-cli at the version in
# Cargo.lock, wasm-pack, Chromium + chromedriver, Firefox ESR + geckodriver,
# WebKitGTK's WebKitWebDriver + Xvfb, and nginx. A second run only checks and
# takes seconds.
#
# The chosen toolchain is written to target/toolchain for the Makefile.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages -----------------------------------------------------------
APT_UPDATED=0
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || { echo "setup: please install: ${missing[*]}" >&2; exit 1; }
  if [ $APT_UPDATED = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  say "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Rust with a wasm32 standard library ----------------------------------------
has_wasm_std() { # $1: toolchain
  local dir
  dir=$(rustc +"$1" --print target-libdir --target wasm32-unknown-unknown 2>/dev/null) || return 1
  compgen -G "$dir/libstd-*.rlib" >/dev/null
}

# rustc looks for its wasm linker, rust-lld, beside itself; Debian ships lld apart.
link_rust_lld() {
  local bin
  bin="$(rustc +web --print sysroot)/lib/rustlib/$(rustc +web -vV | sed -n 's/^host: //p')/bin"
  [ -x "$bin/rust-lld" ] && return 0
  as_root mkdir -p "$bin"
  as_root ln -sf "$(command -v lld-22 || echo /usr/lib/llvm-22/bin/lld)" "$bin/rust-lld"
}

build_debian_wasm_sysroot() {
  apt_install rustc-web cargo-web rust-web-src rust-web-clippy rustfmt-web lld-22
  rustup toolchain list | grep -q '^web' || rustup toolchain link web /usr
  link_rust_lld
  has_wasm_std web && return 0
  say "building the wasm32 standard library for Debian's rustc-web (once, about a minute)"
  local scratch
  scratch=$(mktemp -d)
  mkdir -p "$scratch/src" && : >"$scratch/src/lib.rs"
  printf '[package]\nname = "sysroot_scratch"\nversion = "0.0.0"\nedition = "2021"\n' >"$scratch/Cargo.toml"
  (cd "$scratch" && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zforce-unstable-if-unmarked" \
    cargo +web build -q --release --target wasm32-unknown-unknown \
    -Z build-std=std,panic_abort,test,proc_macro)
  local libdir=/usr/lib/rustlib/wasm32-unknown-unknown/lib
  as_root mkdir -p "$libdir"
  find "$scratch/target/wasm32-unknown-unknown/release/deps" -name '*.rlib' \
    ! -name 'libsysroot_scratch-*' -exec cp {} "$libdir/" \;
  rm -rf "$scratch"
  has_wasm_std web || { echo "setup: the wasm32 sysroot did not build" >&2; exit 1; }
}

choose_toolchain() {
  # SETUP_TOOLCHAIN=debian forces the offline path (to test it where rustup can download).
  if [ "${SETUP_TOOLCHAIN:-}" = debian ]; then build_debian_wasm_sysroot >&2; echo web; return; fi
  if has_wasm_std web; then link_rust_lld >&2; echo web; return; fi
  local default
  default=$(rustup show active-toolchain 2>/dev/null | cut -d' ' -f1)
  if [ -n "$default" ] && has_wasm_std "$default"; then echo "$default"; return; fi
  # Where rustup can download, this is all it takes; here it cannot (it hangs).
  if [ -n "$default" ] && timeout 30 rustup target add wasm32-unknown-unknown >/dev/null 2>&1 \
    && has_wasm_std "$default"; then echo "$default"; return; fi
  build_debian_wasm_sysroot >&2
  echo web
}

command -v rustup >/dev/null || { echo "setup: rustup is required (https://rustup.rs)" >&2; exit 1; }
TOOLCHAIN=$(choose_toolchain)
mkdir -p target
echo "$TOOLCHAIN" >target/toolchain
for comp in clippy-driver rustfmt; do
  rustup which --toolchain "$TOOLCHAIN" "$comp" >/dev/null 2>&1 \
    || { [ "$TOOLCHAIN" = web ] && apt_install rust-web-clippy rustfmt-web; } \
    || rustup component add --toolchain "$TOOLCHAIN" clippy rustfmt
done
say "rust toolchain: $TOOLCHAIN ($(rustc +"$TOOLCHAIN" --version))"

# wasm-bindgen-cli at the Cargo.lock version, and wasm-pack --------------------
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
[ -n "$WB_VERSION" ] || { echo "setup: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$WB_VERSION" ]; then
  say "installing wasm-bindgen-cli $WB_VERSION (about two minutes)"
  # No --locked: its lock file pins crates the reachable registry lacks.
  cargo +"$TOOLCHAIN" install -q --force wasm-bindgen-cli --version "$WB_VERSION"
fi
if ! command -v wasm-pack >/dev/null; then
  say "installing wasm-pack (about two minutes)"
  cargo +"$TOOLCHAIN" install -q wasm-pack --version 0.15.1
fi

# Browsers and servers --------------------------------------------------------
apt_install chromium chromium-driver firefox-esr webkit2gtk-driver xvfb xauth nginx-light
if [ "$(geckodriver --version 2>/dev/null | head -n1 | cut -d' ' -f2)" != 0.37.1 ]; then
  say "installing geckodriver (about a minute)"
  cargo +"$TOOLCHAIN" install -q geckodriver --version 0.37.1
fi
# The nginx service is not wanted; tests and the demo start their own on loopback.
if command -v systemctl >/dev/null && systemctl is-active -q nginx 2>/dev/null; then as_root systemctl stop nginx || true; fi

# JavaScript tools (Playwright drives Debian's Chromium; binaryen's wasm-opt) ---
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dev dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi

say "ready"
