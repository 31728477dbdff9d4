#!/usr/bin/env bash
# Benchmark: point-in-time recovery on a private MariaDB writing its binary
# log (ROW, FULL), in one run:
#
#   1. the follower's lag under a steady write load on the billing tables
#      (RATE*2 transactions a second for SECS seconds, then BURST*2 at
#      once), median and 99th percentile (bench/pitr-load.py); its CPU
#      time and peak memory; bytes stored against the log's own size;
#   2. a restore to a second after CHANGES*2 transactions written after the
#      copy: `backup restore --to` against what a DBA would do with the
#      same copy and the same events (the copy restored, then
#      `mariadb-binlog`/`mysqlbinlog --start-position --stop-datetime | mariadb`), both
#      checked with CHECKSUM TABLE against the state at that second.
#
#   CLIENTS=90000 bench/pitr.sh     the seed shape (90000: about 1 GB)
#   SHAPE=wide SERVER=mysql bench/pitr.sh
#   RATE=100 SECS=60 BURST=2500 CHANGES=100000
#
#   SHAPE   seed (billmgr-ops dev seed) or wide (bench/gen-wide.py)
#   SERVER  mariadb  a private MariaDB of the machine's own package
#           mysql    the private MySQL 9 of scripts/dbserver.sh (it logs
#                    by default; the baseline reads its log with its own
#                    mysqlbinlog)
#
# Results: bench/runs/<date>-<host>-pitr/results.tsv. Not a test: nothing
# here asserts a time.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
[ -x /usr/bin/time ] || apt_install time

clients=${CLIENTS:-90000}
shape=${SHAPE:-seed}
server=${SERVER:-mariadb}
scale=${SCALE:-1}
rate=${RATE:-100}
secs=${SECS:-60}
burst=${BURST:-2500}
changes=${CHANGES:-100000}
cargo build --release --quiet --features dev
bin=$PWD/target/release/billmgr-ops
work=$PWD/target/bench-pitr
run_dir=${RUN_DIR:-$PWD/bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)-pitr-$shape-$server}
[ -z "${RUN_DIR:-}" ] && [ -e "$run_dir" ] && run_dir=$run_dir-$(date -u +%H%M)
stop_mariadb "$work/mariadb" 2>/dev/null
rm -rf "$work"
mkdir -p "$work/mgr/etc" "$work/mgr/var" "$run_dir"
results=$run_dir/results.tsv

if [ "$server" = mysql ]; then
  say "private MySQL (scripts/dbserver.sh), which writes its binary log by default"
  root=/var/lib/billmgr-ops-test/mysql-root
  bash scripts/dbserver.sh mysql stop
  base=$(DBSERVER_ARGS="--innodb-flush-log-at-trx-commit=2 --sync-binlog=0" bash scripts/dbserver.sh mysql)
  stop_server() { bash scripts/dbserver.sh mysql stop; }
  reader() { chroot "$root" mysqlbinlog --skip-gtids "$@"; }
  inside=/srv/billmgr-ops-test/data
else
  say "private MariaDB with its binary log in $work/mariadb"
  base=$(start_mariadb "$work/mariadb" --log-bin=binlog --server-id=1 --binlog-format=ROW \
    --binlog-row-image=FULL --innodb-flush-log-at-trx-commit=2 --sync-binlog=0)
  stop_server() { stop_mariadb "$work/mariadb"; }
  reader() { mariadb-binlog "$@"; }
  inside=$work/mariadb/data
fi
port=${base##*:}
M="mariadb --protocol=tcp -h127.0.0.1 -P$port -uroot"
export MGR_DIR=$work/mgr BILLMGR_OPS_DB=$base/bench
printf 'BinlogFollow off\nBackupDrillDays 0\nBackupThreads 2\n' >"$work/mgr/etc/billmgr-ops.conf"
follower=
trap '[ -n "$follower" ] && kill "$follower" 2>/dev/null; stop_server' EXIT

seed_bench "$shape" "$clients" "$scale" "$M" "$port" "$bin" "$base/bench" "$work/seeded" "$work/seed.log" || exit 1
size=$($M -N -e "SELECT ROUND(SUM(data_length + index_length) / 1048576) FROM information_schema.tables WHERE table_schema = 'bench'")
printf 'shape\t%s (%s clients, scale %s), %s MiB, on %s\n' "$shape" "$clients" "$scale" "$size" "$($M -N -e 'SELECT VERSION()')" | tee "$results"
$M -e 'FLUSH BINARY LOGS'

say "1. the follower's lag"
"$bin" backup follow --segment-seconds 10 >"$work/follow.log" 2>&1 &
follower=$!
state=$work/mgr/var/billmgr-ops/binlog/bench/state.json
for _ in $(seq 1 100); do [ -f "$state" ] && break; sleep 0.1; done
logpos() { { $M -N -e 'SHOW BINARY LOG STATUS' 2>/dev/null || $M -N -e 'SHOW MASTER STATUS'; } | awk '{print $2}'; }
log_before=$(logpos)
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$follower/stat")
python3 bench/pitr-load.py lag --port "$port" --rate "$rate" --secs "$secs" --burst "$burst" --state "$state" | tee -a "$results"
# The last segment sealed (idle, after --segment-seconds) and stored.
spool=$work/mgr/var/billmgr-ops/binlog/bench
for _ in $(seq 1 60); do
  [ -z "$(ls "$spool/sealed")" ] && grep -q '"open": null' "$state" && break
  sleep 0.5
done
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$follower/stat")
tick=$(getconf CLK_TCK)
printf 'follower_cpu_s\t%s\n' "$(python3 -c "print(round(($u1 + $s1 - $u0 - $s0) / $tick, 2))")" | tee -a "$results"
printf 'follower_peak_rss_mib\t%s\n' "$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$follower/status")" | tee -a "$results"
log_after=$(logpos)
stored=$(cat "$work"/mgr/var/billmgr-ops/backup/billmgr-binlog-*.seg 2>/dev/null | wc -c)
printf 'log_bytes\t%s\nstored_bytes\t%s (segments include the file head of each)\n' "$((log_after - log_before))" "$stored" | tee -a "$results"

say "2. a restore to a second"
"$bin" backup create >/dev/null 2>&1
copy=$($M -N bench -e 'SELECT name FROM billmgrops_backup ORDER BY id DESC LIMIT 1')
pos=$(python3 -c "import json,sys; b=json.load(open('$work/mgr/var/billmgr-ops/backup/$copy.json'))['binlog']; print(b['file'], b['pos'])")
python3 bench/pitr-load.py changes --port "$port" --n "$changes"
sleep 1.1
second=$(date -u '+%F %T')
tables=$($M -N -e "SELECT GROUP_CONCAT(CONCAT('\`', TABLE_NAME, '\`') ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'bench' AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE 'billmgrops%'")
sums() { $M -N bench -e "CHECKSUM TABLE $tables" | awk '{print $2}' | tr '\n' ' '; }
want=$(sums)
sleep 1.1
python3 bench/pitr-load.py changes --port "$port" --n 2000
sleep 12
printf 'changes_after_copy\t%s transactions\n' "$((changes * 2))" | tee -a "$results"
t0=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$work/restore.mem" "$bin" backup restore --to "$second" 2>"$work/restore.log" || { cat "$work/restore.log"; exit 1; }
t1=$(date +%s.%N)
got=$(sums)
printf 'billmgr_ops_restore_to_second_s\t%.1f\tchecksums %s\tpeak %s MiB\n' "$(python3 -c "print($t1 - $t0)")" \
  "$([ "$got" = "$want" ] && echo equal || echo DIFFERENT)" "$(( $(cat "$work/restore.mem") / 1024 ))" | tee -a "$results"
grep 'restored the database' "$work/restore.log" | tee -a "$results"

# The baseline: the same copy, then the server's own log through its own
# tools, up to the same second (--stop-datetime stops before the first
# event at or after it).
kill "$follower"
follower=
read -r file start <<<"$pos"
stop=$(date -u -d "@$(( $(date -u -d "$second UTC" +%s) + 1 ))" '+%F %T')
logs=$($M -N -e 'SHOW BINARY LOGS' | awk '{print $1}' | awk -v f="$file" '$1 >= f' | sed "s|^|$inside/|")
t0=$(date +%s.%N)
"$bin" backup restore "$copy" >/dev/null 2>&1
# shellcheck disable=SC2086
# The plugin's own tables are not in the copy: their rows are left out, as
# docs/archive-format.md's replay-log.sh does.
TZ=UTC reader --start-position="$start" --stop-datetime="$stop" $logs |
  awk '/Table_map: `[^`]*`\.`billmgrops_/ { skip = 1 }
       skip { if (/^'"'"'\/\*!\*\/;/) skip = 0; next }
       { print }' | $M bench
t1=$(date +%s.%N)
got=$(sums)
printf 'baseline_copy_then_binlog_reader_s\t%.1f\tchecksums %s\n' "$(python3 -c "print($t1 - $t0)")" \
  "$([ "$got" = "$want" ] && echo equal || echo DIFFERENT)" | tee -a "$results"
say "results in $results"
