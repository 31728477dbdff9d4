#!/usr/bin/env bash
# Benchmark: billmgr-ops backup and restore against mysqldump, mydumper and
# myloader, on the same private MariaDB, in the same run.
#
#   bench/run.sh [CLIENTS]      default 90000 clients (about 1 GB)
#   RUNS=3 THREADS=2 bench/run.sh 90000
#   SHAPE=wide SCALE=1 bench/run.sh
#                               the second shape, made by bench/gen-wide.py
#                               (not by billmgr-ops): skewed clients, 1.4 M
#                               saved objects, XML log rows with blobs, wide
#                               attachment rows; about 1.2 GB at scale 1
#   SHAPE=binary bench/run.sh   the third: the wide shape's tables with
#                               2 KB log rows, two thirds bytes (BLOB,
#                               VARBINARY); about 1.4 GB at scale 1
#   bench/copy.sh               the copy alone, on any shape, on MariaDB
#                               or MySQL
#
# Every tool copies what billmgr-ops copies: tables, data, views, triggers,
# routines and events (mysqldump --routines --events, mydumper -G -E -R).
#
# Results: bench/runs/<date>/results.tsv and summary.md (copy the summary
# into docs/benchmarks.md). Every restore is checked with CHECKSUM TABLE
# against the source. Not a test: nothing here asserts a time.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
command -v mydumper >/dev/null || apt_install mydumper
[ -x /usr/bin/time ] || apt_install time

clients=${1:-90000}
shape=${SHAPE:-seed}
scale=${SCALE:-1}
runs=${RUNS:-1}
threads=${THREADS:-2}
cargo build --release --quiet --features dev
bin=$PWD/target/release/billmgr-ops
work=$PWD/target/bench
# A run never overwrites an earlier one of the same day (RUN_DIR to choose).
run_dir=${RUN_DIR:-$PWD/bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)-$shape}
[ -z "${RUN_DIR:-}" ] && [ -e "$run_dir" ] && run_dir=$run_dir-$(date -u +%H%M)
out=$work/out
rm -rf "$out" "$work/mgr"
mkdir -p "$out" "$work/mgr/etc" "$work/mgr/var" "$run_dir"

say "private MariaDB in $work/mariadb (server defaults: 128 MiB buffer pool)"
base=$(start_mariadb "$work/mariadb")
trap 'stop_mariadb "$work/mariadb"' EXIT
port=${base##*:}
M="mariadb --protocol=tcp -h127.0.0.1 -P$port -uroot"
C="-h127.0.0.1 -P$port -uroot"
export MGR_DIR=$work/mgr BILLMGR_OPS_DB=$base/bench
printf 'BackupThreads %s\nBackupFiles etc\n' "$threads" >"$work/mgr/etc/billmgr-ops.conf"

$M -e 'DROP DATABASE IF EXISTS bench; CREATE DATABASE bench CHARACTER SET utf8mb4'
if [ "$shape" != seed ]; then
  say "generating the $shape shape at scale $scale (bench/gen-wide.py)"
  /usr/bin/time -f '%e' -o "$out/seed.time" python3 bench/gen-wide.py --port "$port" --database bench --scale "$scale" --shape "$shape" 2>"$out/seed.log"
  what="the $shape shape (bench/gen-wide.py --shape $shape) at scale $scale"
else
  what="$clients clients by dev seed"
  say "seeding $clients clients"
  /usr/bin/time -f '%e' -o "$out/seed.time" "$bin" dev seed --clients "$clients" --seed 1 2>"$out/seed.log"
fi
$M -N -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench'" | while read -r t; do
  $M -e "ANALYZE TABLE bench.\`$t\`" >/dev/null
done
size_mib=$($M -N -e "SELECT ROUND(SUM(DATA_LENGTH+INDEX_LENGTH)/1048576,1) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench'")
rows=$($M -N -e "SELECT SUM(TABLE_ROWS) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench'")
say "database: $size_mib MiB, about $rows rows (seeded in $(cat "$out/seed.time") s)"

tables=$($M -N -e "SELECT GROUP_CONCAT(CONCAT('\`',TABLE_NAME,'\`')) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' AND TABLE_TYPE='BASE TABLE' AND TABLE_NAME NOT LIKE 'billmgrops\\_%'")
checksums() { $M -N "$1" -e "CHECKSUM TABLE $tables" | awk '{print $2}' | tr '\n' ' '; }
source_sums=$(checksums bench)

# Quiet the server between runs: flush dirty pages, drop the OS page cache.
quiesce() { quiesce_server "$M"; }

# An S3-compatible storage for per-object restore over the network:
# s3rver (npm; objects are files, a ranged GET reads only its range, as
# S3 does) on loopback by default; S3=moto for the tests' server, whose
# ranged GET copies the whole object first (197 ms per 30 KB read of a
# 256 MiB object against s3rver's 4.6 ms: it measures moto); S3=0: none.
s3_storage=
s3_kind=${S3:-s3rver}
if [ "$s3_kind" != 0 ]; then
  s3port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if [ "$s3_kind" = moto ]; then
    ensure_test_servers
    coproc S3D { target/test-servers/venv/bin/python tests/fixtures/servers/s3d.py "$s3port" copies 2>/dev/null; }
    read -r s3 <&"${S3D[0]}"
  else
    command -v npm >/dev/null || apt_install nodejs npm
    tools=$PWD/target/bench-tools
    [ -x "$tools/node_modules/.bin/s3rver" ] ||
      { mkdir -p "$tools" && (cd "$tools" && npm install --silent --no-audit --no-fund s3rver@3 >/dev/null); }
    rm -rf "$work/s3rver" && mkdir -p "$work/s3rver"
    "$tools/node_modules/.bin/s3rver" -d "$work/s3rver" -a 127.0.0.1 -p "$s3port" \
      --configure-bucket copies --silent >"$out/s3rver.log" 2>&1 &
    s3pid=$!
    trap 'kill $s3pid 2>/dev/null; stop_mariadb "$work/mariadb"' EXIT
    for _ in $(seq 1 50); do
      curl -s -o /dev/null "http://127.0.0.1:$s3port/" && break
      sleep 0.2
    done
    s3='{"bucket": "copies", "access_key": "S3RVER", "secret_key": "S3RVER"}'
  fi
  s3f() { python3 -c "import json, sys; print(json.loads(sys.argv[1])['$1'])" "$s3"; }
  "$bin" call billmgr.backup.setup sok=ok storage_name=bench-s3 plan_name=bench-s3 schedule=off at_time=03:00 \
    storage_kind=s3 endpoint="http://127.0.0.1:$s3port" bucket="$(s3f bucket)" \
    access_key="$(s3f access_key)" secret_key="$(s3f secret_key)" >"$out/s3-setup.log" 2>&1
  s3_storage=$($M -N bench -e "SELECT id FROM billmgrops_storage WHERE name = 'bench-s3'")
  [ -n "$s3_storage" ] || { say "the S3 storage was not set up:"; cat "$out/s3-setup.log"; exit 1; }
fi

results=$run_dir/results.tsv
printf 'kind\tmethod\trun\tseconds\tpeak_rss_kib\tbytes\tverified\n' >"$results"
measure() { # kind method run command...
  local kind=$1 method=$2 run=$3; shift 3
  quiesce
  /usr/bin/time -f '%e %M' -o "$out/t" bash -c "$*" >"$out/$method.log" 2>&1 || { say "$method failed:"; tail -5 "$out/$method.log"; return 1; }
  read -r secs rss <"$out/t"
  printf '%s\t%s\t%s\t%s\t%s\t' "$kind" "$method" "$run" "$secs" "$rss" >>"$results"
  say "$kind $method run $run: $secs s, peak RSS $rss KiB"
}

for run in $(seq 1 "$runs"); do
  rm -rf "$out/mydumper" "$out"/*.zst "$out"/*.gz "$work/mgr/var/billmgr-ops/backup"
  measure dump billmgr-ops "$run" "$bin backup create" &&
    printf '%s\tok\n' "$(stat -c %s "$work"/mgr/var/billmgr-ops/backup/*.tar)" >>"$results"
  measure dump mysqldump-zstd "$run" "mysqldump $C --single-transaction --quick --routines --events --triggers bench | zstd -3 -T0 -q >$out/dump.sql.zst" &&
    printf '%s\tok\n' "$(stat -c %s "$out/dump.sql.zst")" >>"$results"
  measure dump mysqldump-gzip "$run" "mysqldump $C --single-transaction --quick --routines --events --triggers bench | gzip -6 >$out/dump.sql.gz" &&
    printf '%s\tok\n' "$(stat -c %s "$out/dump.sql.gz")" >>"$results"
  measure dump mydumper "$run" "mydumper -h 127.0.0.1 -P $port -u root -B bench -t $threads --compress --trx-consistency-only -G -E -R -o $out/mydumper" &&
    printf '%s\tok\n' "$(du -sb "$out/mydumper" | cut -f1)" >>"$results"

  copy=$("$bin" backup list | head -1 | cut -f2)
  $M -e 'DROP DATABASE IF EXISTS bench_bmo_undo'
  measure restore billmgr-ops "$run" "$bin backup restore $copy" &&
    { [ "$(checksums bench)" = "$source_sums" ] && v=ok || v=MISMATCH; printf '%s\t%s\n' "$(stat -c %s "$work"/mgr/var/billmgr-ops/backup/*.tar)" "$v" >>"$results"; }
  $M -e 'DROP DATABASE IF EXISTS bench_bmo_undo; DROP DATABASE IF EXISTS r_mysql; CREATE DATABASE r_mysql CHARACTER SET utf8mb4'
  measure restore mysql "$run" "zstd -dc $out/dump.sql.zst | mariadb $C r_mysql" &&
    { [ "$(checksums r_mysql)" = "$source_sums" ] && v=ok || v=MISMATCH; printf '%s\t%s\n' "$(stat -c %s "$out/dump.sql.zst")" "$v" >>"$results"; }
  $M -e 'DROP DATABASE IF EXISTS r_mysql; DROP DATABASE IF EXISTS r_myloader'
  measure restore myloader "$run" "myloader -h 127.0.0.1 -P $port -u root -t $threads -d $out/mydumper -B r_myloader -o" &&
    { [ "$(checksums r_myloader)" = "$source_sums" ] && v=ok || v=MISMATCH; printf '%s\t%s\n' "$(du -sb "$out/mydumper" | cut -f1)" "$v" >>"$results"; }
  $M -e 'DROP DATABASE IF EXISTS r_myloader'

  # One client back from the copy (skip: every row exists, so what is
  # measured is finding and reading them): a typical one, with the number
  # of services closest to 25, and the one with the most.
  for which in typical busiest; do
    order='ABS(COUNT(*) - 25)'; [ "$which" = busiest ] && order='COUNT(*) DESC'
    client=$($M -N bench -e "SELECT account FROM item GROUP BY account ORDER BY $order, account LIMIT 1")
    measure "object-$which" billmgr-ops "$run" "$bin backup restore-object $copy account $client --behavior skip" &&
      printf '%s\tok\n' "$(sed -n 's/^read \([0-9]*\) of .*/\1/p' "$out/billmgr-ops.log")" >>"$results"
  done

  # The typical client again, from a copy on S3-compatible storage on
  # loopback (s3rver, or moto), every read a signed ranged GET.
  if [ -n "$s3_storage" ]; then
    "$bin" backup create --storage "$s3_storage" >"$out/s3-backup.log" 2>&1
    s3_copy=$($M -N bench -e "SELECT name FROM billmgrops_backup WHERE state = 'ok' ORDER BY id DESC LIMIT 1")
    client=$($M -N bench -e "SELECT account FROM item GROUP BY account ORDER BY ABS(COUNT(*) - 25), account LIMIT 1")
    measure object-typical-s3 billmgr-ops "$run" "$bin backup restore-object $s3_copy account $client --behavior skip" &&
      printf '%s\tok\n' "$(sed -n 's/^read \([0-9]*\) of .*/\1/p' "$out/billmgr-ops.log")" >>"$results"
  fi
done

# Medians and ratios.
python3 - "$results" "$size_mib" "$rows" "$what" "$threads" "$runs" >"$run_dir/summary.md" <<'PY'
import csv, statistics, sys
path, size, rows, what, threads, runs = sys.argv[1:]
data = {}
for r in csv.DictReader(open(path), delimiter='\t'):
    data.setdefault((r['kind'], r['method']), []).append(r)
def med(kind, method, field):
    v = [float(r[field]) for r in data.get((kind, method), []) if r.get(field)]
    return statistics.median(v) if v else None
print(f"Database: {size} MiB (data + indexes), about {rows} rows, {what}; "
      f"{threads} threads for every parallel tool; median of {runs} run(s).\n")
for kind, base in (("dump", "mysqldump-zstd"), ("restore", "mysql")):
    print(f"| {kind} | seconds | x {base} | peak RSS MiB | output MB | verified |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    b = med(kind, base, 'seconds')
    for (k, m), rs in data.items():
        if k != kind:
            continue
        s = med(k, m, 'seconds'); rss = med(k, m, 'peak_rss_kib'); by = med(k, m, 'bytes')
        ok = ",".join(sorted({r['verified'] for r in rs}))
        print(f"| {m} | {s:.2f} | {s/b:.2f} | {rss/1024:.0f} | {by/1e6:.1f} | {ok} |")
    print()
for which, what in (('typical', 'a typical client (services closest to 25)'), ('busiest', 'the client with the most services'),
                    ('typical-s3', 'the typical client from S3-compatible storage on loopback')):
    o = med(f'object-{which}', 'billmgr-ops', 'seconds')
    if o is not None:
        read = med(f'object-{which}', 'billmgr-ops', 'bytes'); arch = med('dump', 'billmgr-ops', 'bytes')
        print(f"Per-object restore of {what}: {o:.2f} s, peak RSS "
              f"{med(f'object-{which}', 'billmgr-ops', 'peak_rss_kib')/1024:.0f} MiB, read {read/1e6:.1f} MB "
              f"of the {arch/1e6:.1f} MB copy ({100*read/arch:.1f}%).\n")
ours, myd = med('dump', 'billmgr-ops', 'seconds'), med('dump', 'mydumper', 'seconds')
ro, rl = med('restore', 'billmgr-ops', 'seconds'), med('restore', 'myloader', 'seconds')
print(f"Backup: {ours/med('dump','mysqldump-zstd','seconds'):.2f} x mysqldump|zstd, {ours/myd:.2f} x mydumper. "
      f"Restore: {ro/med('restore','mysql','seconds'):.2f} x mysql, {ro/rl:.2f} x myloader. "
      f"Archive: {med('dump','billmgr-ops','bytes')/med('dump','mysqldump-gzip','bytes'):.2f} x mysqldump|gzip.")
PY
[ -n "$s3_storage" ] && echo "S3-compatible server: $s3_kind on loopback." >>"$run_dir/summary.md"
cat "$run_dir/summary.md"
