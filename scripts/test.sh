#!/usr/bin/env bash
# Runs the whole test suite. Installs what it needs (Rust, MariaDB binaries,
# sshd, and moto and pyftpdlib in a venv) on a fresh Debian/Ubuntu machine;
# the tests start their own private mariadbd (unless BILLMGR_OPS_TEST_DB
# names a server) and their own SFTP, FTP, FTPS and S3 servers on loopback;
# then the database tests run again on a private MySQL (scripts/mysql.sh).
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
ensure_test_servers
# The suite may create the system account `billmgrops-test` and vsftpd's
# /var/run/vsftpd/empty (tests/harness/servers.rs); this script allows it.
export BILLMGR_OPS_TEST_SYSTEM=1
say "cargo test"
cargo test --all-targets --features dev "$@"
# The same backup, restore, per-object restore, upload, panel-list and
# operations tests on MySQL (Debian's own, 9.x, local_infile off as on a
# real host), started by scripts/mysql.sh from a debootstrap chroot, which
# needs root. Only for a whole run (no arguments); MYSQL=0 leaves it out.
if [ $# -eq 0 ] && [ "${MYSQL:-1}" != 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "MySQL tests left out: scripts/mysql.sh needs root"
  else
    url=$(bash scripts/mysql.sh)
    trap 'bash scripts/mysql.sh stop' EXIT
    say "cargo test on MySQL ($url)"
    BILLMGR_OPS_TEST_DB=$url cargo test --features dev --test integration -- \
      backup:: object_restore:: backupdata:: transfer:: runningoperation:: runner:: \
      credentials:: reader::
  fi
fi
