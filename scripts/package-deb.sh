#!/usr/bin/env bash
# Builds the .deb: scripts/package-deb.sh [OUT_DIR] (default target/deb).
#
# The package holds the binary (manifests, example config and logrotate
# rules are compiled into it) at /usr/lib/billmgr-ops/billmgr-ops and a
# /usr/sbin/billmgr-ops link; its postinst runs `billmgr-ops install`, its
# prerm `billmgr-ops uninstall` (data kept; see README). Built with
# dpkg-deb, which every Debian and Ubuntu has. BINARY=path uses a binary
# already built instead of `cargo build --release`; DEB_COMPRESSION=none
# (or gzip, zstd) instead of xz.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/deb}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
if [ -z "${BINARY:-}" ]; then
  cargo build --release --locked
  BINARY=target/release/billmgr-ops
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -d -m 755 "$stage/DEBIAN" "$stage/usr/lib/billmgr-ops" "$stage/usr/sbin" \
  "$stage/usr/share/doc/billmgr-ops"
install -m 755 "$BINARY" "$stage/usr/lib/billmgr-ops/billmgr-ops"
ln -s ../lib/billmgr-ops/billmgr-ops "$stage/usr/sbin/billmgr-ops"
install -m 644 README.md docs/*.md etc/billmgr-ops.conf.example "$stage/usr/share/doc/billmgr-ops/"
for script in postinst prerm; do
  install -m 755 "packaging/deb/$script" "$stage/DEBIAN/$script"
done
size=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: billmgr-ops
Version: $version
Architecture: $arch
Maintainer: billmgr-ops developers <dev@billmgr-ops.invalid>
Installed-Size: $size
Depends: libc6, libgcc-s1
Recommends: mariadb-client | default-mysql-client, cron, logrotate
Suggests: default-mta | mail-transport-agent
Section: admin
Priority: optional
Homepage: https://github.com/billmgr-ops/billmgr-ops
Description: backup and running operations for BILLmanager 6
 One binary that plugs into BILLmanager 6 (/usr/local/mgr5) as an addon
 handler: consistent, verifiable backups of the billing database and panel
 files on local, SFTP, FTP and S3 storages with full and per-object
 restore, and a real runner for the queue of service operations.
CONTROL
mkdir -p "$out"
dpkg-deb --root-owner-group "-Z${DEB_COMPRESSION:-xz}" --build "$stage" "$out/billmgr-ops_${version}_${arch}.deb" >&2
echo "$out/billmgr-ops_${version}_${arch}.deb"
