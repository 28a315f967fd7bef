#!/usr/bin/env bash
# Builds the package and serves the demo page with a generated sample file,
# with nginx on 127.0.0.1, until Ctrl-C. DEMO_PORT picks the port (default
# 8080, or a free one if 8080 is taken); DEMO_SIZE_MIB the sample's size.
set -euo pipefail
source "$(dirname "$0")/env.sh"
scripts/package.sh
scripts/demo-settings.sh

dir=target/demo
sample_file "$dir/files/sample.bin" $((${DEMO_SIZE_MIB:-256} << 20))
port=${DEMO_PORT:-8080}
python3 -c "import socket; socket.socket().bind(('127.0.0.1', $port))" 2>/dev/null || port=$(free_port)
step "resumable-fetch demo: http://127.0.0.1:$port/  (Ctrl-C stops it)"
exec scripts/nginx.sh "$dir" "$port"
