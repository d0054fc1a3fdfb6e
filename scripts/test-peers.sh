#!/bin/sh
# The real peers the tests talk to, from Debian's packages: installed when run as root (CI, a
# fresh box), otherwise the exact command to run is printed and the tests do not start.
set -eu
need=""
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have mosquitto || need="$need mosquitto"
have mosquitto_sub || need="$need mosquitto-clients"
have openssl || need="$need openssl"
have docker-registry || need="$need docker-registry"
have socat || need="$need socat"
have qemu-system-x86_64 || need="$need qemu-system-x86"
[ -x /bin/busybox ] || need="$need busybox-static"
have xz || need="$need xz-utils"
have chromium || need="$need chromium"
have systemd-analyze || need="$need systemd"
# the opt-in posix_spawn launcher's parity tests build native/spawn.c with cc and Node's N-API
# headers (from Node's include/node, else Debian's libnode-dev; N-API is ABI-stable)
have cc || need="$need gcc libc6-dev"
node_headers() { for d in "$(dirname "$(command -v node)")/../include/node" /usr/include/node /usr/local/include/node; do [ -f "$d/node_api.h" ] && return 0; done; return 1; }
node_headers || need="$need libnode-dev"
# The VM image is built from Debian's kernel and udev packages (apt-get download): apt's lists must be there.
lists=ok
apt-cache show linux-image-amd64 >/dev/null 2>&1 || lists=missing
[ -z "$need" ] && [ "$lists" = ok ] && exit 0
if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  [ -z "$need" ] || apt-get install -y -qq --no-install-recommends $need >/dev/null
  exit 0
fi
[ -z "$need" ] && { echo "apt's package lists are missing (the VM test downloads Debian's kernel). Run: sudo apt-get update" >&2; exit 1; }
echo "The tests need Debian packages that are missing. Run:" >&2
echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends$need" >&2
exit 1
