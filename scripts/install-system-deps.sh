#!/usr/bin/env bash
# Install Debian packages whose program is missing. Usage:
#   install-system-deps.sh [--optional] package:program [package:program ...]
# Exits 0 when every program is present afterwards. With --optional, exits 3
# (instead of failing loudly) when the packages cannot be installed here.
set -euo pipefail
optional=0
if [ "${1:-}" = "--optional" ]; then optional=1; shift; fi

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
for spec in "$@"; do
  pkg=${spec%%:*}; prog=${spec#*:}
  have "$prog" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

fail() {
  if [ $optional -eq 1 ]; then echo "note: $1" >&2; exit 3; fi
  echo "error: $1" >&2; exit 1
}
command -v apt-get >/dev/null 2>&1 || fail "apt-get not found; install ${missing[*]} with your package manager"
[ "$(id -u)" -eq 0 ] || fail "installing ${missing[*]} needs root (run as root, or: sudo apt-get install ${missing[*]})"

echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || fail "apt-get update failed"
# policy-rc.d 101: the packages must not start system-wide services; tests and the
# demo start their own instances on free loopback ports.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1; fi
status=0
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
[ $created_policy -eq 1 ] && rm -f "$policy"
[ $status -eq 0 ] || fail "apt-get install ${missing[*]} failed (exit $status)"
for spec in "$@"; do prog=${spec#*:}; have "$prog" || fail "$prog still missing after installing ${spec%%:*}"; done
