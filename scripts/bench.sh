#!/usr/bin/env bash
# The benchmark: builds the package, serves a random file with nginx on
# 127.0.0.1 and runs bench/run.mjs in headless Chromium, which prints the
# figures and rewrites the measured part of docs/BENCHMARKS.md. A benchmark,
# not a test: it fails only when a download does not verify.
#   BENCH_LARGE=1  a 2 GiB file instead of 512 MiB (it also serves the resume measure)
#   BENCH_RUNS=N   runs per contender (default 5; 3 with BENCH_LARGE, about 7 minutes)
#   BENCH_ONLY=a,b these contenders only, printed and not written (for experiments)
set -euo pipefail
source "$(dirname "$0")/env.sh"
started=$SECONDS

scripts/package.sh
dir=target/bench
if [ -n "${BENCH_LARGE:-}" ]; then
  sample="$dir/files/sample-2g.bin"
  sample_file "$sample" $((2048 << 20))
  resume="$sample"
  runs=3
else
  runs=5
  sample="$dir/files/sample-512m.bin"
  sample_file "$sample" $((512 << 20))
  # The resume measure reloads with 1 GiB stored: a file just past that.
  resume="$dir/files/resume-1152m.bin"
  sample_file "$resume" $((1152 << 20))
fi

cleanup() { [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true; }
trap cleanup EXIT
rm -rf "$dir/logs" "$dir/profile"
port=$(free_port)
scripts/nginx.sh "$dir" "$port" --background

command="make bench"
[ -n "${BENCH_RUNS:-}" ] && command="BENCH_RUNS=$BENCH_RUNS $command"
[ -n "${BENCH_LARGE:-}" ] && command="BENCH_LARGE=1 $command"
step "benchmark: $(chromium --version 2>/dev/null | head -n1), $(nproc) cores"
BASE_URL="http://127.0.0.1:$port" ACCESS_LOG="$dir/logs/access.log" PROFILE="$dir/profile" \
  SAMPLE="$sample" RESUME_SAMPLE="$resume" RUNS="${BENCH_RUNS:-$runs}" DOC=docs/BENCHMARKS.md \
  ONLY="${BENCH_ONLY:-}" \
  COMMAND="$command" node bench/run.mjs
rm -rf "$dir/profile"
echo "make bench: $((SECONDS - started)) s in all"
