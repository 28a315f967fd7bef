# Sourced by the scripts: the toolchain setup.sh chose, and warnings as errors.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
[ -f target/toolchain ] || { echo "run scripts/setup.sh (or make setup) first" >&2; exit 1; }
export RUSTUP_TOOLCHAIN
RUSTUP_TOOLCHAIN=$(cat target/toolchain)
export RUSTFLAGS="-D warnings"
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# A TCP port free on 127.0.0.1 now.
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
# Creates FILE of SIZE random bytes unless it already has that size.
sample_file() {
  [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" = "$2" ] && return 0
  step "generating a $(($2 >> 20)) MiB sample file"
  mkdir -p "$(dirname "$1")"
  head -c "$2" /dev/urandom >"$1.tmp" && mv "$1.tmp" "$1"
}
