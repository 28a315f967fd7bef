# Sourced by the scripts: the toolchain setup.sh chose, and warnings as errors.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
[ -f target/toolchain ] || { echo "run scripts/setup.sh (or make setup) first" >&2; exit 1; }
export RUSTUP_TOOLCHAIN
RUSTUP_TOOLCHAIN=$(cat target/toolchain)
export RUSTFLAGS="-D warnings"
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
