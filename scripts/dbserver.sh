#!/usr/bin/env bash
# Starts a private database server of another kind than the machine's own,
# on loopback, and prints its mysql:// URL, for running the tests against
# it:
#
#   BILLMGR_OPS_TEST_DB=$(scripts/dbserver.sh mysql) cargo test --features dev -- backup::
#   scripts/dbserver.sh mariadb-10.5
#   scripts/dbserver.sh mysql stop
#   scripts/dbserver.sh mysql root     the chroot's directory (its socket
#                                      is /srv/billmgr-ops-test/mysql.sock
#                                      inside)
#
# Kinds, each Debian's own package in a chroot of the Debian release that
# ships it, made once with debootstrap from the machine's configured mirror
# and kept in /var/lib/billmgr-ops-test/<kind> (Debian 12 has no MySQL
# server, and its MariaDB is 10.11):
#   mysql         MySQL 9.x (mysql-server-core, Debian unstable), with
#                 local_infile off as on a real host
#   mariadb-10.5  MariaDB 10.5 (mariadb-server-core, Debian 11)
# The data is in /srv/billmgr-ops-test inside the chroot. Needs root.
# DBSERVER_ARGS adds server options to a server it starts (the benches').
# scripts/test.sh runs the database tests on each.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

kind=${1:?usage: scripts/dbserver.sh mysql|mariadb-10.5 [stop]}
case "$kind" in
mysql) suite=sid packages="mysql-server-core mysql-client-core" ;;
mariadb-10.5) suite=bullseye packages="mariadb-server-core-10.5 mariadb-client-core-10.5" ;;
*) echo "unknown server kind $kind" >&2; exit 2 ;;
esac
ROOT=/var/lib/billmgr-ops-test/$kind
[ "$kind" = mysql ] && ROOT=${MYSQL_ROOT:-/var/lib/billmgr-ops-test/mysql-root}
DATA=/srv/billmgr-ops-test
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
APT=(-o Acquire::Check-Valid-Until=false)

ensure_chroot() {
  if [ -x "$ROOT/usr/sbin/mysqld" ] || [ -x "$ROOT/usr/sbin/mariadbd" ]; then return; fi
  command -v debootstrap >/dev/null || apt_install debootstrap
  say "making a Debian $suite chroot with $packages in $ROOT"
  rm -rf "$ROOT"
  mkdir -p "$(dirname "$ROOT")"
  debootstrap --variant=minbase "$suite" "$ROOT" "$MIRROR" >/dev/null
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod +x "$ROOT/usr/sbin/policy-rc.d"
  chroot "$ROOT" apt-get "${APT[@]}" update -qq
  # shellcheck disable=SC2086
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get "${APT[@]}" install -y -qq \
    --no-install-recommends $packages >/dev/null
}

if [ "${2:-}" = root ]; then
  echo "$ROOT"
  exit 0
fi
if [ "${2:-}" = stop ]; then
  # Back only once the server is gone: a server started next must not
  # find this one still shutting down on the same files.
  if [ -f "$ROOT$DATA/pid" ] && pid=$(cat "$ROOT$DATA/pid") && kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 240); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
  fi
  exit 0
fi

ensure_chroot
if [ -f "$ROOT$DATA/port" ] && [ -f "$ROOT$DATA/pid" ] && kill -0 "$(cat "$ROOT$DATA/pid")" 2>/dev/null; then
  echo "mysql://root@127.0.0.1:$(cat "$ROOT$DATA/port")"
  exit 0
fi
mkdir -p "$ROOT$DATA"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "$port" >"$ROOT$DATA/port"
common=(--datadir="$DATA/data" --user=root --port="$port" --bind-address=127.0.0.1
  --socket="$DATA/mysql.sock" --log-error="$DATA/error.log" --pid-file="$DATA/pid"
  --innodb-buffer-pool-size=256M --character-set-server=utf8mb4)
# shellcheck disable=SC2206
common+=(${DBSERVER_ARGS:-})
if [ "$kind" = mysql ]; then
  if [ ! -d "$ROOT$DATA/data/mysql" ]; then
    chroot "$ROOT" /usr/sbin/mysqld --no-defaults --initialize-insecure \
      --datadir="$DATA/data" --user=root >"$ROOT$DATA/install.log" 2>&1
  fi
  # local_infile is left OFF (MySQL's default), as on a real host.
  chroot "$ROOT" /usr/sbin/mysqld --no-defaults "${common[@]}" --mysqlx=OFF \
    --secure-file-priv= >/dev/null 2>&1 &
else
  if [ ! -d "$ROOT$DATA/data/mysql" ]; then
    chroot "$ROOT" mysql_install_db --no-defaults --datadir="$DATA/data" --user=root \
      --auth-root-authentication-method=normal --skip-test-db --force >"$ROOT$DATA/install.log" 2>&1
  fi
  chroot "$ROOT" /usr/sbin/mariadbd --no-defaults "${common[@]}" --skip-name-resolve \
    --collation-server=utf8mb4_general_ci >/dev/null 2>&1 &
fi
for _ in $(seq 1 120); do
  if mariadb --protocol=tcp -h127.0.0.1 -P"$port" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    echo "mysql://root@127.0.0.1:$port"
    exit 0
  fi
  sleep 0.5
done
cat "$ROOT$DATA/error.log" >&2
exit 1
