#!/bin/sh
# Installs (or upgrades, or rolls back) edgevisor from an unpacked release tarball, as root:
#   sudo ./scripts/install.sh             install or upgrade to this release, then enable --now
#   sudo ./scripts/install.sh --rollback  go back to the release before the current one
# Layout: /opt/edgevisor/releases/<version>/, /opt/edgevisor/current and .../previous (symlinks),
# /etc/edgevisor/config.json (kept across upgrades), /etc/systemd/system/edgevisor.service,
# /etc/udev/rules.d/99-edgevisor.rules, /usr/local/bin/edgevisor.
# DESTDIR=<dir> installs under <dir> without creating the user or calling systemctl/udevadm
# (for packaging and tests).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${DESTDIR:-}
opt="$dest/opt/edgevisor"
live() { [ -z "$dest" ]; }

restart() {
  if live && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    systemctl enable edgevisor.service >/dev/null
    systemctl restart edgevisor.service
    systemctl --no-pager --lines=0 status edgevisor.service || true
  fi
}

if [ "${1:-}" = "--rollback" ]; then
  [ -L "$opt/previous" ] || { echo "edgevisor: no previous release to roll back to" >&2; exit 1; }
  before=$(readlink "$opt/current")
  ln -sfn "$(readlink "$opt/previous")" "$opt/current"
  ln -sfn "$before" "$opt/previous"
  echo "edgevisor: now $(basename "$(readlink "$opt/current")") (was $(basename "$before"))"
  restart
  exit 0
fi

version=$(node -p "require('$here/package.json').version" 2>/dev/null) || { echo "edgevisor: needs Node.js >= 20.19 on PATH" >&2; exit 1; }
release="$opt/releases/$version"

if live && ! id edgevisor >/dev/null 2>&1; then
  # its own system user; serial devices come through the udev rule (group edgevisor) and dialout
  useradd --system --user-group --no-create-home --home-dir /var/lib/edgevisor --shell /usr/sbin/nologin edgevisor
  usermod -a -G dialout edgevisor
fi

mkdir -p "$opt/releases"
rm -rf "$release.new"
cp -r "$here" "$release.new"
rm -rf "$release"
mv "$release.new" "$release"
if [ -L "$opt/current" ] && [ "$(readlink "$opt/current")" != "$release" ]; then
  ln -sfn "$(readlink "$opt/current")" "$opt/previous"
fi
ln -sfn "$release" "$opt/current"

install -d -m 0750 "$dest/etc/edgevisor"
if [ ! -e "$dest/etc/edgevisor/config.json" ]; then
  install -m 0640 "$here/deploy/config.example.json" "$dest/etc/edgevisor/config.json"
  echo "edgevisor: wrote /etc/edgevisor/config.json from the example: set thingName and mqtt.* there"
fi
live && chgrp edgevisor /etc/edgevisor /etc/edgevisor/config.json
install -D -m 0644 "$here/deploy/edgevisor.service" "$dest/etc/systemd/system/edgevisor.service"
install -D -m 0644 "$here/deploy/99-edgevisor.rules" "$dest/etc/udev/rules.d/99-edgevisor.rules"
install -d "$dest/usr/local/bin"
printf '#!/bin/sh\nexec node /opt/edgevisor/current/dist/bundle/main.js "$@"\n' > "$dest/usr/local/bin/edgevisor"
chmod 0755 "$dest/usr/local/bin/edgevisor"
if live && command -v udevadm >/dev/null 2>&1; then udevadm control --reload-rules && udevadm trigger --subsystem-match=tty || true; fi

# keep the current and previous releases only
for old in "$opt"/releases/*; do
  case "$old" in "$(readlink "$opt/current")" | "$(readlink "$opt/previous" 2>/dev/null || true)") ;; *) rm -rf "$old" ;; esac
done
echo "edgevisor: installed $version"
restart
