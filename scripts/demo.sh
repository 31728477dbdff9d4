#!/usr/bin/env bash
# The quick start: builds billmgr-ops, starts a private MariaDB in
# target/demo/, fills it with demo billing data, installs the plugin into a
# demo panel tree (target/demo/mgr), and shows real panel calls (PARAM_*
# environment + XML on stdin, one XML document out), a backup, a restore
# and the status screen.
#   scripts/demo.sh           run the demo and stop the server afterwards
#   KEEP=1 scripts/demo.sh    leave the server running to try calls by hand
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps

say "building (release)"
cargo build --release --quiet --features dev
bin=$PWD/target/release/billmgr-ops
demo=$PWD/target/demo
mkdir -p "$demo/mgr/etc" "$demo/mgr/var" "$demo/sys/etc/cron.d" "$demo/sys/etc/logrotate.d"

say "starting a private MariaDB in $demo/mariadb"
base=$(start_mariadb "$demo/mariadb")
[ -n "${KEEP:-}" ] || trap 'stop_mariadb "$demo/mariadb"' EXIT
mariadb --protocol=tcp -h127.0.0.1 -P"${base##*:}" -uroot \
  -e 'DROP DATABASE IF EXISTS billmgr; CREATE DATABASE billmgr CHARACTER SET utf8mb4'
export MGR_DIR=$demo/mgr BILLMGR_OPS_DB=$base/billmgr
printf 'DBUrl %s\n' "$BILLMGR_OPS_DB" >"$demo/mgr/etc/billmgr-ops.conf"

say "seeding demo data: billmgr-ops dev seed --clients 2000"
"$bin" dev seed --clients 2000 --seed 1

show() { printf '\n\033[1m$ %s\033[0m\n' "$1"; bash -c "$1"; echo; }
say "installing into the demo panel tree $demo/mgr (its cron and logrotate files go to $demo/sys, not /etc)"
show "$bin install --sysroot $demo/sys"
show "printf '<doc func=\"runningoperation\"/>' | env PARAM_func=runningoperation PARAM_p_cnt=3 AUTH_USER=admin AUTH_LEVEL=29 $bin"
show "printf '<doc func=\"runningoperation\"/>' | env PARAM_func=runningoperation AUTH_USER=client AUTH_LEVEL=16 $bin"
show "printf '<doc' | env PARAM_func=runningoperation AUTH_USER=admin AUTH_LEVEL=29 PARAM_lang=ru $bin"
show "$bin call runningoperation p_cnt=3 p_num=2 p_sort=trycount p_order=desc"
op=$(mariadb --protocol=tcp -h127.0.0.1 -P"${base##*:}" -uroot -N billmgr \
  -e 'SELECT runningoperation FROM billmgrops_attempt GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 1')
show "$bin call runningoperation.errorhistory elid=$op p_cnt=3"
say "a scheduler tick: the due operations start in the background (this demo has no processing modules installed, so each attempt is a recorded failure)"
show "$bin cron"
sleep 2
attempt=$(mariadb --protocol=tcp -h127.0.0.1 -P"${base##*:}" -uroot -N billmgr \
  -e "SELECT MAX(id) FROM billmgrops_attempt WHERE outcome <> 'interrupted'")
show "$bin call errorhistory.showlog elid=$attempt"
say "a backup of the billing database and <mgrdir>/etc, checked, listed in the panel"
show "$bin backup create"
show "$bin backup verify \$($bin backup list | head -1 | cut -f2)"
show "$bin call billmgr.backup p_cnt=3"
say "delete half the payments, then restore the copy (staged, checked, swapped atomically)"
mariadb --protocol=tcp -h127.0.0.1 -P"${base##*:}" -uroot billmgr -e 'DELETE FROM payment WHERE id % 2 = 0; SELECT COUNT(*) AS payments_left FROM payment'
show "$bin backup restore \$($bin backup list | head -1 | cut -f2)"
mariadb --protocol=tcp -h127.0.0.1 -P"${base##*:}" -uroot billmgr -e 'SELECT COUNT(*) AS payments_after_restore FROM payment'
say "health at a glance (exit status 1 when something needs attention)"
show "$bin status --no-probe || true"
say "the log: $demo/mgr/var/billmgr-ops.log"
if [ -n "${KEEP:-}" ]; then
  say "the server keeps running: export MGR_DIR=$MGR_DIR BILLMGR_OPS_DB=$BILLMGR_OPS_DB"
  say "stop it with: kill \$(cat $demo/mariadb/mariadbd.pid)"
fi
