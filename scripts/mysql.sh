#!/usr/bin/env bash
# Starts a private MySQL server (Debian's own mysql-server-core, 9.x from
# Debian unstable) on loopback and prints its mysql:// URL, for running the
# tests against MySQL by hand:
#
#   BILLMGR_OPS_TEST_DB=$(scripts/mysql.sh) cargo test --features dev -- backup::
#
# Debian 12 has no MySQL server package, so the server lives in a chroot
# made with debootstrap from the machine's configured Debian mirror, kept in
# /var/lib/billmgr-ops-test/mysql-root (MYSQL_ROOT) and reused. Its data
# is in /srv/billmgr-ops-test inside that chroot; `scripts/mysql.sh stop`
# stops it. Needs root. scripts/test.sh runs the database tests on it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ROOT=${MYSQL_ROOT:-/var/lib/billmgr-ops-test/mysql-root}
DATA=/srv/billmgr-ops-test
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
APT=(-o Acquire::Check-Valid-Until=false)

ensure_chroot() {
  if [ -x "$ROOT/usr/sbin/mysqld" ]; then return; fi
  command -v debootstrap >/dev/null || apt_install debootstrap
  say "making a Debian unstable chroot with mysql-server-core in $ROOT"
  rm -rf "$ROOT"
  mkdir -p "$(dirname "$ROOT")"
  debootstrap --variant=minbase sid "$ROOT" "$MIRROR" >/dev/null
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod +x "$ROOT/usr/sbin/policy-rc.d"
  chroot "$ROOT" apt-get "${APT[@]}" update -qq
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get "${APT[@]}" install -y -qq \
    --no-install-recommends mysql-server-core mysql-client-core >/dev/null
}

if [ "${1:-}" = stop ]; then
  [ -f "$ROOT$DATA/pid" ] && kill "$(cat "$ROOT$DATA/pid")" 2>/dev/null || true
  exit 0
fi

ensure_chroot
if [ -f "$ROOT$DATA/port" ] && [ -f "$ROOT$DATA/pid" ] && kill -0 "$(cat "$ROOT$DATA/pid")" 2>/dev/null; then
  echo "mysql://root@127.0.0.1:$(cat "$ROOT$DATA/port")"
  exit 0
fi
mkdir -p "$ROOT$DATA"
if [ ! -d "$ROOT$DATA/data/mysql" ]; then
  chroot "$ROOT" /usr/sbin/mysqld --no-defaults --initialize-insecure \
    --datadir="$DATA/data" --user=root >"$ROOT$DATA/install.log" 2>&1
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "$port" >"$ROOT$DATA/port"
# As Debian's package runs it, but for the private paths: local_infile is
# left OFF (MySQL's default), as on a real host.
chroot "$ROOT" /usr/sbin/mysqld --no-defaults --datadir="$DATA/data" --user=root \
  --port="$port" --bind-address=127.0.0.1 --socket="$DATA/mysql.sock" --mysqlx=OFF \
  --secure-file-priv= --log-error="$DATA/error.log" --pid-file="$DATA/pid" \
  --innodb-buffer-pool-size=256M --character-set-server=utf8mb4 >/dev/null 2>&1 &
for _ in $(seq 1 120); do
  if mariadb --protocol=tcp -h127.0.0.1 -P"$port" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    echo "mysql://root@127.0.0.1:$port"
    exit 0
  fi
  sleep 0.5
done
cat "$ROOT$DATA/error.log" >&2
exit 1
