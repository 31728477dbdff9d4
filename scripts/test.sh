#!/usr/bin/env bash
# Runs the whole test suite. Installs what it needs (Rust, MariaDB binaries,
# sshd, and moto and pyftpdlib in a venv) on a fresh Debian/Ubuntu machine;
# the tests start their own private mariadbd (unless BILLMGR_OPS_TEST_DB
# names a server) and their own SFTP, FTP, FTPS and S3 servers on loopback;
# then the database tests run again on a private MySQL and MariaDB 10.5
# (scripts/dbserver.sh).
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
ensure_test_servers
# The suite may create the system account `billmgrops-test` and vsftpd's
# /var/run/vsftpd/empty (tests/harness/servers.rs); this script allows it.
export BILLMGR_OPS_TEST_SYSTEM=1
say "cargo test"
cargo test --all-targets --features dev "$@"
# The same backup, restore, per-object restore, upload, panel-list,
# operations and by-hand restore (docs/archive-format.md) tests as an
# account like the panel's own (ALL on its database only:
# BILLMGR_OPS_TEST_ACCOUNT=panel gives the plugin that account), and
# on the other servers real hosts run: MySQL (Debian's own, 9.x,
# local_infile off as on a real host; as root and as the panel's account)
# and MariaDB 10.5, each started by scripts/dbserver.sh from a debootstrap
# chroot, which needs root. Only for a whole run (no arguments); SERVERS=""
# leaves the other servers out.
groups=(backup:: object_restore:: backupdata:: transfer:: runningoperation:: runner:: credentials:: reader:: recipe:: pitr::)
if [ $# -eq 0 ]; then
  say "cargo test as the panel's own account"
  BILLMGR_OPS_TEST_ACCOUNT=panel cargo test --features dev --test integration -- "${groups[@]}" || exit
  if [ "$(id -u)" -ne 0 ]; then
    say "MySQL and MariaDB 10.5 tests left out: scripts/dbserver.sh needs root"
  else
    for kind in ${SERVERS-mysql mariadb-10.5}; do
      url=$(bash scripts/dbserver.sh "$kind")
      accounts=root
      [ "$kind" = mysql ] && accounts="root panel"
      status=0
      for account in $accounts; do
        say "cargo test on $kind ($url) as $account"
        [ "$account" = panel ] && export BILLMGR_OPS_TEST_ACCOUNT=panel
        BILLMGR_OPS_TEST_DB=$url BILLMGR_OPS_TEST_DB_ROOT=$(bash scripts/dbserver.sh "$kind" root) cargo test --features dev --test integration -- "${groups[@]}" || status=$?
        unset BILLMGR_OPS_TEST_ACCOUNT
        [ "$status" -eq 0 ] || break
      done
      bash scripts/dbserver.sh "$kind" stop
      [ "$status" -eq 0 ] || exit "$status"
    done
  fi
fi
