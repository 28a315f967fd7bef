#!/usr/bin/env bash
# Serves the demo with nginx on 127.0.0.1: www/ at /, pkg/ at /pkg/, the
# settings module (scripts/demo-settings.sh) at /settings/, the benchmark's
# page (bench/) at /bench/, and the
# files of DIR/files at /files/ (with Range, ETag and Last-Modified, as any
# static server does) and again at /slow/, paced to SLOW_RATE per connection
# (default 4m) so that a download on loopback lasts long enough to reload the
# page in the middle. Usage: nginx.sh DIR PORT [--background]
# The access log (DIR/logs/access.log) records when each request ended and
# how long it took, its Range header and the bytes sent, for tests that check
# what was fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(realpath "$1") port=$2 mode=${3:-}
mkdir -p "$dir/files" "$dir/logs" "$dir/tmp"
root=$PWD
# Workers run as whoever started nginx: the checkout may be readable by its
# owner only (a clone in a mktemp -d directory is), and nginx started as root
# would otherwise serve it as "nobody" and answer 403.
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root root;"
cat >"$dir/nginx.conf" <<CONF
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 256; }
http {
  types {
    text/html html; text/javascript js mjs; text/css css; application/json json;
    application/wasm wasm; image/png png; image/svg+xml svg; text/plain txt;
  }
  default_type application/octet-stream;
  log_format ranges '\$msec \$request_time "\$request" \$status \$body_bytes_sent "\$http_range"';
  access_log $dir/logs/access.log ranges;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  sendfile on;
  server {
    listen 127.0.0.1:$port;
    root $root/www;
    location /pkg/ { alias $root/pkg/; add_header Cache-Control no-cache; }
    location /settings/ { alias $root/target/demo-settings/; add_header Cache-Control no-cache; }
    location /bench/ { alias $root/bench/; add_header Cache-Control no-cache; }
    location /files/ { alias $dir/files/; }
    location /slow/ { alias $dir/files/; limit_rate ${SLOW_RATE:-4m}; }
  }
}
CONF
if [ "$mode" = --background ]; then
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log"
else
  exec nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" -g 'daemon off;'
fi
