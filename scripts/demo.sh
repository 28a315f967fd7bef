#!/usr/bin/env bash
# Builds the package and serves the demo page with a generated sample file,
# with nginx on 127.0.0.1, until Ctrl-C. DEMO_PORT picks the port (default
# 8080, or a free one if 8080 is taken); DEMO_SIZE_MIB the sample's size.
set -euo pipefail
source "$(dirname "$0")/env.sh"
scripts/package.sh

dir=target/demo size=$((${DEMO_SIZE_MIB:-256} << 20))
mkdir -p "$dir/files"
sample=$dir/files/sample.bin
if [ "$(stat -c %s "$sample" 2>/dev/null || echo 0)" != "$size" ]; then
  step "generating a $((size >> 20)) MiB sample file"
  head -c "$size" /dev/urandom >"$sample.tmp" && mv "$sample.tmp" "$sample"
fi
port=${DEMO_PORT:-8080}
if ! python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', $port))" 2>/dev/null; then
  port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
fi
step "resumable-fetch demo: http://127.0.0.1:$port/  (Ctrl-C stops it)"
exec scripts/nginx.sh "$dir" "$port"
