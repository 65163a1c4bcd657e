#!/usr/bin/env bash
# Installs Debian's `prometheus` package (prometheus + promtool, 2.42 on bookworm) when missing, without
# leaving its packaged daemon running: the checks start their own server on a free loopback port.
set -euo pipefail
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "prometheus/promtool missing: run as root, or: sudo apt-get install prometheus" >&2
  exit 2
fi
# policy-rc.d exit 101 = "do not start services" while the package installs (unless one is already set).
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi
trap '[ -z "$own_policy" ] || rm -f "$policy"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# Never started at boot either.
if command -v systemctl >/dev/null 2>&1; then systemctl disable prometheus >/dev/null 2>&1 || true; fi
if command -v update-rc.d >/dev/null 2>&1; then update-rc.d prometheus disable >/dev/null 2>&1 || true; fi
promtool --version 2>&1 | head -n 1
