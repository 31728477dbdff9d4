#!/usr/bin/env bash
# Runs the whole test suite. Installs what it needs (Rust, MariaDB binaries,
# sshd, and moto and pyftpdlib in a venv) on a fresh Debian/Ubuntu machine;
# the tests start their own private mariadbd (unless BILLMGR_OPS_TEST_DB
# names a server) and their own SFTP, FTP, FTPS and S3 servers on loopback.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
ensure_test_servers
# The suite may create the system account `billmgrops-test` and vsftpd's
# /var/run/vsftpd/empty (tests/harness/servers.rs); this script allows it.
export BILLMGR_OPS_TEST_SYSTEM=1
say "cargo test"
exec cargo test --all-targets --features dev "$@"
