#!/usr/bin/env bash
# Runs the whole test suite. Installs what it needs (Rust, MariaDB binaries)
# on a fresh Debian/Ubuntu machine; the tests start their own private
# mariadbd unless BILLMGR_OPS_TEST_DB names a server.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
say "cargo test"
exec cargo test --all-targets "$@"
