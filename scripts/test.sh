#!/usr/bin/env bash
# Install the test needs (Debian packages + the Python package with its test extras) and run
# every test.  This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=""
  for pkg in iptables ipset iproute2 conntrack kmod procps; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
  done
  if [ -n "$need" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
  fi
fi
python3 -m pip install -q -e '.[test]'
python3 -m pytest -q -n 2 -p no:cacheprovider "$@"
