#!/bin/sh
# A release tarball for this machine's architecture: the built agent, its production
# dependencies (native modules as built here), profiles, deploy files and the installer.
#   npm run release            -> release/edgevisor-<version>-linux-<arch>.tar.gz
#   sh scripts/release.sh --built   packs dist/ as it is (the tests: others run from it meanwhile)
set -eu
cd "$(dirname "$0")/.."
version=$(node -p "require('./package.json').version")
arch=$(node -p "process.arch")
name="edgevisor-$version-linux-$arch"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
[ "${1:-}" = --built ] || npm run --silent build
mkdir -p "$stage/$name" release
cp -r dist package.json package-lock.json profiles deploy "$stage/$name/"
mkdir -p "$stage/$name/scripts" && cp scripts/install.sh "$stage/$name/scripts/"
# node_modules as built on this box, less the development dependencies
cp -r node_modules "$stage/$name/"
(cd "$stage/$name" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
tar -C "$stage" -czf "release/$name.tar.gz" "$name"
echo "release/$name.tar.gz"
