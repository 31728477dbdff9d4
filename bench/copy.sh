#!/usr/bin/env bash
# Benchmark: the copy alone, billmgr-ops against `mysqldump | zstd -3`, on
# any of the three data shapes and on either kind of server, alternating,
# in the same run.
#
#   bench/copy.sh                         the seed shape on MariaDB 10.11
#   SHAPE=binary SERVER=mysql RUNS=3 bench/copy.sh
#
#   SHAPE   seed    `billmgr-ops dev seed --clients CLIENTS` (default 90000)
#           wide    bench/gen-wide.py: skewed clients, XML log rows, blobs
#           binary  bench/gen-wide.py --shape binary: the wide shape's
#                   tables with log rows of about 2 KB, two thirds bytes
#                   (compressible BLOB, random VARBINARY)
#   SERVER  mariadb  a private MariaDB of the machine's own package
#           mysql    the private MySQL 9 of scripts/dbserver.sh
#                    (its mysqldump, `--set-gtid-purged=OFF`)
#
# mysqldump copies what billmgr-ops copies (`--single-transaction --quick
# --routines --events --triggers`); zstd -3 with a thread per core, as in
# bench/run.sh. Every copy of billmgr-ops is verified (`backup verify`).
# Results: bench/runs/<date>-<host>-copy-<shape>-<server>/results.tsv and
# summary.md. Not a test: nothing here asserts a time.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
[ -x /usr/bin/time ] || apt_install time

shape=${SHAPE:-seed}
server=${SERVER:-mariadb}
clients=${CLIENTS:-90000}
scale=${SCALE:-1}
runs=${RUNS:-3}
cargo build --release --quiet --features dev
bin=$PWD/target/release/billmgr-ops
work=$PWD/target/bench-copy-$server
run_dir=${RUN_DIR:-$PWD/bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)-copy-$shape-$server}
[ -z "${RUN_DIR:-}" ] && [ -e "$run_dir" ] && run_dir=$run_dir-$(date -u +%H%M)
rm -rf "$work/mgr" "$work/out"
mkdir -p "$work/mgr/etc" "$work/mgr/var" "$work/out" "$run_dir"

if [ "$server" = mysql ]; then
  base=$(DBSERVER_ARGS="--innodb-flush-log-at-trx-commit=2 --sync-binlog=0" bash scripts/dbserver.sh mysql)
  trap 'bash scripts/dbserver.sh mysql stop' EXIT
  root=/var/lib/billmgr-ops-test/mysql-root
  [ -x "$root/usr/bin/mysqldump" ] ||
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false \
      install -y -qq --no-install-recommends mysql-client >/dev/null
  dump="chroot $root mysqldump --set-gtid-purged=OFF"
  # Beside the server's data: bench/restore-mysql.sh seeds the same.
  marker=$root/srv/billmgr-ops-test/bench.seeded
else
  base=$(start_mariadb "$work/mariadb")
  trap 'stop_mariadb "$work/mariadb"' EXIT
  dump=mysqldump
  marker=$work/seeded
fi
port=${base##*:}
M="mariadb --protocol=tcp -h127.0.0.1 -P$port -uroot"
C="--protocol=tcp -h127.0.0.1 -P$port -uroot"
export MGR_DIR=$work/mgr BILLMGR_OPS_DB=$base/bench
printf 'BackupThreads 2\n' >"$work/mgr/etc/billmgr-ops.conf"

# The seed stays in the server's database `bench` between runs; it is
# made again when the shape asked for is not the one there.
seed_bench "$shape" "$clients" "$scale" "$M" "$port" "$bin" "$base/bench" "$marker" "$work/seed.log" || exit 1
$M -e 'DELETE FROM bench.billmgrops_backup' 2>/dev/null || true
size=$($M -N -e "SELECT ROUND(SUM(DATA_LENGTH + INDEX_LENGTH) / 1048576, 1) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' AND TABLE_NAME NOT LIKE 'billmgrops%'")
version=$($M -N -e 'SELECT VERSION()')

quiesce() { quiesce_server "$M"; }
results=$run_dir/results.tsv
printf 'method\trun\tseconds\tpeak_rss_kib\tbytes\tverified\n' >"$results"
for run in $(seq 1 "$runs"); do
  rm -rf "$work/mgr/var/billmgr-ops/backup" "$work/out/dump.sql.zst"
  quiesce
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin" backup create 2>"$work/create.log" ||
    { cat "$work/create.log" >&2; exit 1; }
  read -r secs rss <"$work/time"
  listing=$(ls "$work"/mgr/var/billmgr-ops/backup/*.json | head -1)
  verified=failed
  "$bin" backup verify "$(basename "$listing" .json)" >/dev/null 2>&1 && verified=ok
  printf 'billmgr-ops\t%s\t%s\t%s\t%s\t%s\n' "$run" "$secs" "$rss" \
    "$(stat -c %s "$work"/mgr/var/billmgr-ops/backup/*.tar)" "$verified" >>"$results"
  say "billmgr-ops run $run: $secs s"
  $M -e 'DELETE FROM bench.billmgrops_backup'
  quiesce
  /usr/bin/time -f '%e %M' -o "$work/time" bash -c \
    "set -o pipefail; $dump $C --single-transaction --quick --routines --events --triggers bench | zstd -3 -T0 -q >$work/out/dump.sql.zst" ||
    exit 1
  read -r secs rss <"$work/time"
  printf 'mysqldump-zstd\t%s\t%s\t%s\t%s\tok\n' "$run" "$secs" "$rss" "$(stat -c %s "$work/out/dump.sql.zst")" >>"$results"
  say "mysqldump|zstd -3 run $run: $secs s"
done

python3 - "$results" "$size" "$shape" "$version" "$runs" >"$run_dir/summary.md" <<'EOF'
import csv, statistics, sys
path, size, shape, version, runs = sys.argv[1:]
rows = list(csv.DictReader(open(path), delimiter="\t"))
def med(method, field):
    return statistics.median(float(r[field]) for r in rows if r["method"] == method)
ours, theirs = med("billmgr-ops", "seconds"), med("mysqldump-zstd", "seconds")
per_run = ", ".join(
    f"{float(a['seconds']) / float(b['seconds']):.2f}"
    for a, b in zip([r for r in rows if r["method"] == "billmgr-ops"], [r for r in rows if r["method"] == "mysqldump-zstd"]))
print(f"Shape {shape}, {size} MiB, {version}; medians of {runs} alternating run(s).\n")
print("| | billmgr-ops | mysqldump\\|zstd -3 |")
print("| --- | ---: | ---: |")
print(f"| copy, s | {ours:.2f} ({ours / theirs:.2f} ×; per run {per_run}) | {theirs:.2f} |")
print(f"| peak RSS, MiB | {med('billmgr-ops', 'peak_rss_kib') / 1024:.0f} | |")
a, b = med("billmgr-ops", "bytes"), med("mysqldump-zstd", "bytes")
print(f"| archive, MB | {a / 1e6:.1f} ({a / b:.3f} ×) | {b / 1e6:.1f} |")
print(f"| verified | {' '.join(sorted({r['verified'] for r in rows if r['method'] == 'billmgr-ops'}))} | |")
EOF
cat "$run_dir/summary.md"
