#!/usr/bin/env bash
# Benchmark: peak memory with millions of saved objects. Generates the wide
# shape at SCALE (default 3.6: about 5 million saved objects, 4 GB) and
# measures billmgr-ops alone: backup, full restore, and restoring one
# client (a typical one: 25 services, and the one with the most), each
# under /usr/bin/time for wall seconds and peak RSS.
#
#   SCALE=3.6 bench/memory.sh
#
# Results: bench/runs/<date>-<host>-memory/results.tsv and summary.md.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
[ -x /usr/bin/time ] || apt_install time

scale=${SCALE:-3.6}
threads=${THREADS:-2}
cargo build --release --quiet --features dev
bin=$PWD/target/release/billmgr-ops
work=$PWD/target/bench-memory
# A run never overwrites an earlier one of the same day (RUN_DIR to choose).
run_dir=${RUN_DIR:-$PWD/bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)-memory}
[ -z "${RUN_DIR:-}" ] && [ -e "$run_dir" ] && run_dir=$run_dir-$(date -u +%H%M)
out=$work/out
rm -rf "$out" "$work/mgr"
mkdir -p "$out" "$work/mgr/etc" "$work/mgr/var" "$run_dir"

base=$(start_mariadb "$work/mariadb")
trap 'stop_mariadb "$work/mariadb"' EXIT
port=${base##*:}
M="mariadb --protocol=tcp -h127.0.0.1 -P$port -uroot"
export MGR_DIR=$work/mgr BILLMGR_OPS_DB=$base/bench
printf 'BackupThreads %s\nBackupFiles etc\n' "$threads" >"$work/mgr/etc/billmgr-ops.conf"

$M -e 'DROP DATABASE IF EXISTS bench; CREATE DATABASE bench CHARACTER SET utf8mb4'
say "generating the wide shape at scale $scale"
python3 bench/gen-wide.py --port "$port" --database bench --scale "$scale" 2>"$out/seed.log"
size_mib=$($M -N -e "SELECT ROUND(SUM(DATA_LENGTH+INDEX_LENGTH)/1048576,1) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench'")
objects=$($M -N -e "SELECT (SELECT COUNT(*) FROM bench.account)+(SELECT COUNT(*) FROM bench.user)+(SELECT COUNT(*) FROM bench.item)+(SELECT COUNT(*) FROM bench.payment)")
rows=$($M -N -e "SELECT SUM(TABLE_ROWS) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench'")
say "database: $size_mib MiB, about $rows rows, $objects saved objects"

results=$run_dir/results.tsv
printf 'what\tseconds\tpeak_rss_kib\tbytes_read\n' >"$results"
measure() { # what command...
  local what=$1; shift
  /usr/bin/time -f '%e %M' -o "$out/t" "$@" >"$out/cmd.log" 2>&1 || { tail -5 "$out/cmd.log"; exit 1; }
  read -r secs rss <"$out/t"
  read_bytes=$(sed -n 's/^read \([0-9]*\) of .*/\1/p' "$out/cmd.log")
  printf '%s\t%s\t%s\t%s\n' "$what" "$secs" "$rss" "${read_bytes:-}" >>"$results"
  say "$what: $secs s, peak RSS $rss KiB ${read_bytes:+, read $read_bytes bytes}"
}
measure backup "$bin" backup create
copy=$("$bin" backup list | head -1 | cut -f2)
archive=$(stat -c %s "$work"/mgr/var/billmgr-ops/backup/*.tar)
typical=$($M -N bench -e 'SELECT account FROM item GROUP BY account ORDER BY ABS(COUNT(*) - 25), account LIMIT 1')
busiest=$($M -N bench -e 'SELECT account FROM item GROUP BY account ORDER BY COUNT(*) DESC, account LIMIT 1')
measure "one client (25 services)" "$bin" backup restore-object "$copy" account "$typical" --behavior skip
measure "one client (the most services)" "$bin" backup restore-object "$copy" account "$busiest" --behavior skip
measure restore "$bin" backup restore "$copy"

{
  echo "Database: $size_mib MiB (data + indexes), about $rows rows, $objects saved objects: the wide shape (bench/gen-wide.py) at scale $scale; archive $archive bytes."
  echo
  echo "| billmgr-ops | seconds | peak RSS MiB | archive bytes read |"
  echo "| --- | ---: | ---: | ---: |"
  tail -n +2 "$results" | while IFS=$'\t' read -r what secs rss readb; do
    echo "| $what | $secs | $((rss / 1024)) | ${readb:-} |"
  done
} >"$run_dir/summary.md"
cat "$run_dir/summary.md"
