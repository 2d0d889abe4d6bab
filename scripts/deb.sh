#!/usr/bin/env bash
# Builds the Debian package of redis-enc with dpkg-deb: the module in /usr/lib/redis/modules/,
# the tool in /usr/bin/, the example configuration and the docs in /usr/share/doc/redis-enc/.
# No key: the operator makes one (`redis-enc keygen`, docs/OPERATIONS.md runbook 1).
#
#   scripts/deb.sh            builds the release and writes target/debian/redis-enc_VERSION_ARCH.deb
#   scripts/deb.sh --no-build packages what target/release already holds
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${1:-}" = "--no-build" ] || cargo build --release -p redis-enc -p redis-enc-cli
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/redis-enc_${version}_${arch}"

# Redis refuses to load a module file without execute permission.
install -D -m 0755 target/release/libredis_enc.so "$root/usr/lib/redis/modules/libredis_enc.so"
install -D -m 0755 target/release/redis-enc "$root/usr/bin/redis-enc"
strip --strip-debug "$root/usr/lib/redis/modules/libredis_enc.so" "$root/usr/bin/redis-enc"
doc="$root/usr/share/doc/redis-enc"
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 redis.conf.example "$doc/examples/redis.conf.example"
for f in docs/*.md; do install -D -m 0644 "$f" "$doc/$(basename "$f")"; done
cat >"$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: redis-enc
License: Apache-2.0

Files: *
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT

mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<CONTROL
Package: redis-enc
Version: $version
Architecture: $arch
Maintainer: redis-enc maintainers <redis-enc@localhost>
Section: database
Priority: optional
Depends: libc6 (>= 2.34), libgcc-s1
Recommends: redis-server (>= 5:7.0) | valkey-server
Installed-Size: $(du -sk "$root/usr" | cut -f1)
Description: Redis module that encrypts values inside Redis
 redis-enc seals values with XAES-256-GCM inside Redis, so that regulated data
 is encrypted at rest, in backups and in replication, readable only by the ACL
 users allowed to, with keys that rotate without downtime. This package holds
 the module (load it with loadmodule /usr/lib/redis/modules/libredis_enc.so
 master-key file:PATH) and the redis-enc tool (keys, encrypted backups,
 restores, audit-log verification). It holds no key.
CONTROL

mkdir -p target/debian
dpkg-deb --root-owner-group --build "$root" "target/debian/" >/dev/null
echo "target/debian/redis-enc_${version}_${arch}.deb"
