#!/usr/bin/env bash
# Installs the benchmark's system tools (nginx, varnish, caddy, wrk, h2load, dnsperf, redis-server, openssl) on Debian/Ubuntu,
# only if they are missing. Usage: bash bench/setup.sh
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing=()
have nginx || missing+=(nginx-light)
have varnishd || missing+=(varnish)
have wrk || missing+=(wrk)
have h2load || missing+=(nghttp2-client)
have openssl || missing+=(openssl)
have taskset || missing+=(util-linux)
have dnsperf || missing+=(dnsperf)
have caddy || missing+=(caddy)
have redis-server || missing+=(redis-server)

if [ ${#missing[@]} -eq 0 ]; then
  echo "bench/setup.sh: nginx, varnish, caddy, wrk, h2load, dnsperf, redis-server, openssl and taskset are already installed"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "bench/setup.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

echo "bench/setup.sh: installing ${missing[*]}"
"${sudo[@]}" apt-get update
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
