#!/usr/bin/env bash
# Benchmark: many copies kept. Takes COPIES copies (default 30) of one
# unchanged database in a row and records, after each, the copy's time,
# the size of the catalog (`billmgrops_backup`, `billmgrops_copy_*`,
# `billmgrops_object_*`: the copies and their object index, data +
# indexes as the server reports them) and of all the plugin's tables
# (with the running operations' history the dev seed makes, which copies
# do not change), and the object index's own
# count of blocks and bytes; then times `backupdata.names` (clients, the
# first page and a search) across all copies.
#
#   bench/copies.sh [CLIENTS]            dev seed, default 90000 clients
#   SHAPE=wide SCALE=1 bench/copies.sh   bench/gen-wide.py
#   COPIES=30 bench/copies.sh
#
# Results: bench/runs/<date>-<host>-copies-<shape>/copies.tsv and
# summary.md. Not a test: nothing here asserts a time.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
[ -x /usr/bin/time ] || apt_install time

clients=${1:-90000}
shape=${SHAPE:-seed}
scale=${SCALE:-1}
copies=${COPIES:-30}
threads=${THREADS:-2}
cargo build --release --quiet --features dev
bin=$PWD/target/release/billmgr-ops
work=$PWD/target/bench-copies
# A run never overwrites an earlier one of the same day (RUN_DIR to choose).
run_dir=${RUN_DIR:-$PWD/bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)-copies-$shape}
[ -z "${RUN_DIR:-}" ] && [ -e "$run_dir" ] && run_dir=$run_dir-$(date -u +%H%M)
out=$work/out
rm -rf "$out" "$work/mgr"
mkdir -p "$out" "$work/mgr/etc" "$work/mgr/var" "$run_dir"

say "private MariaDB in $work/mariadb"
base=$(start_mariadb "$work/mariadb")
trap 'stop_mariadb "$work/mariadb"' EXIT
port=${base##*:}
M="mariadb --protocol=tcp -h127.0.0.1 -P$port -uroot"
export MGR_DIR=$work/mgr BILLMGR_OPS_DB=$base/bench
printf 'BackupThreads %s\nBackupFiles etc\n' "$threads" >"$work/mgr/etc/billmgr-ops.conf"

$M -e 'DROP DATABASE IF EXISTS bench; CREATE DATABASE bench CHARACTER SET utf8mb4'
if [ "$shape" = wide ]; then
  python3 bench/gen-wide.py --port "$port" --database bench --scale "$scale" 2>"$out/seed.log"
  what="the wide shape (bench/gen-wide.py) at scale $scale"
else
  "$bin" dev seed --clients "$clients" --seed 1 2>"$out/seed.log"
  what="$clients clients by dev seed"
fi
$M -N -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench'" | while read -r t; do
  $M -e "ANALYZE TABLE bench.\`$t\`" >/dev/null
done
size() { # data + indexes in MiB of the tables LIKE $1 (statistics refreshed first)
  $M -N -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' AND TABLE_NAME LIKE '$1'" | while read -r t; do
    $M -e "ANALYZE TABLE bench.\`$t\`" >/dev/null
  done
  $M -N -e "SELECT ROUND(COALESCE(SUM(DATA_LENGTH+INDEX_LENGTH),0)/1048576,2) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' AND TABLE_NAME LIKE '$1'"
}
data_mib=$($M -N -e "SELECT ROUND(SUM(DATA_LENGTH+INDEX_LENGTH)/1048576,1) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' AND TABLE_NAME NOT LIKE 'billmgrops\\_%'")
objects=$($M -N -e "SELECT (SELECT COUNT(*) FROM bench.account)+(SELECT COUNT(*) FROM bench.user)+(SELECT COUNT(*) FROM bench.item)+(SELECT COUNT(*) FROM bench.payment)")
say "database: $data_mib MiB, $objects saved objects ($what)"

# What the plugin's tables hold before any copy: the running operations'
# history the dev seed makes (the wide shape makes none), not the copies'.
plugin_before=$(size 'billmgrops\_%')
say "the plugin's tables before the first copy: $plugin_before MiB"
results=$run_dir/copies.tsv
printf 'copy\tseconds\tpeak_rss_kib\tcatalog_mib\tplugin_tables_mib\tindex_blocks\tindex_kib\treferences\n' >"$results"
for i in $(seq 1 "$copies"); do
  /usr/bin/time -f '%e %M' -o "$out/t" "$bin" backup create >"$out/copy.log" 2>&1 || { tail -5 "$out/copy.log"; exit 1; }
  read -r secs rss <"$out/t"
  plugin=$(size 'billmgrops\_%')
  catalog=$(python3 -c "import sys; print(round(sum(map(float, sys.argv[1:])), 2))" \
    "$(size 'billmgrops\_backup')" "$(size 'billmgrops\_copy\_%')" "$(size 'billmgrops\_object\_%')")
  # (status exits 1 when it finds a problem, such as no backup plan.)
  idx=$({ "$bin" status --json --no-probe || true; } | python3 -c 'import json,sys; i=json.load(sys.stdin)["backup"]["object_index"]; print(i["blocks"], i["bytes"]//1024, i["references"])')
  read -r blocks kib refs <<<"$idx"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$secs" "$rss" "$catalog" "$plugin" "$blocks" "$kib" "$refs" >>"$results"
  say "copy $i: $secs s, peak RSS $rss KiB; catalog $catalog MiB, plugin tables $plugin MiB; index $blocks blocks, $kib KiB, $refs references"
  # The copies themselves are not what is measured here: keep the disk.
  find "$work/mgr/var/billmgr-ops/backup" -name '*.tar' -delete
done

names() { # seconds of one backupdata.names call
  /usr/bin/time -f '%e %M' -o "$out/t" "$bin" call backupdata.names "$@" >"$out/names.xml" 2>&1
  grep -q '<error' "$out/names.xml" && { head -c 500 "$out/names.xml"; exit 1; }
  cat "$out/t"
}
first=$(names plid=account)
search=$(names plid=account search=a)
items=$(names plid=item)
elems=$(grep -o '<p_elems>[0-9]*' "$out/names.xml" | head -1 | tr -dc 0-9)

python3 - "$results" "$data_mib" "$objects" "$what" "$copies" "$first" "$search" "$items" "$elems" "$plugin_before" >"$run_dir/summary.md" <<'PY'
import csv, sys
path, data, objects, what, copies, first, search, items, elems, before = sys.argv[1:]
rows = list(csv.DictReader(open(path), delimiter='\t'))
last = rows[-1]
print(f"Database: {data} MiB (data + indexes), {objects} saved objects, {what}; {copies} copies of it unchanged.\n")
print("| copy | seconds | peak RSS MiB | catalog MiB | plugin tables MiB | index blocks | index KiB | references |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    if r['copy'] in ('1', '2', '10', '20', copies) or int(r['copy']) == len(rows):
        print(f"| {r['copy']} | {float(r['seconds']):.2f} | {int(r['peak_rss_kib'])/1024:.0f} | {r['catalog_mib']} | {r['plugin_tables_mib']} | {r['index_blocks']} | {r['index_kib']} | {r['references']} |")
f, s, it = (x.split() for x in (first, search, items))
secs = sorted(float(r['seconds']) for r in rows)
print(f"\nAfter {copies} copies the catalog holds {float(last['catalog_mib']):.2f} MiB, "
      f"{100*float(last['catalog_mib'])/float(data):.2f}% of the data; all the plugin's tables "
      f"{float(last['plugin_tables_mib']):.2f} MiB ({100*float(last['plugin_tables_mib'])/float(data):.2f}%), "
      f"of which {float(before):.2f} MiB were there before the first copy (the running operations' history "
      f"the data came with), so the copies added {float(last['plugin_tables_mib'])-float(before):.2f} MiB "
      f"({100*(float(last['plugin_tables_mib'])-float(before))/float(data):.2f}%). "
      f"Copies took {secs[0]:.2f} to {secs[-1]:.2f} s, median {secs[len(secs)//2]:.2f} s; "
      f"copy {copies} took {float(last['seconds']):.2f} s, copy 1 {float(rows[0]['seconds']):.2f} s.")
print(f"backupdata.names: clients, first page {f[0]} s (peak RSS {int(f[1])//1024} MiB); "
      f"clients, search `a` {s[0]} s; services ({elems} of them), first page {it[0]} s (peak RSS {int(it[1])//1024} MiB).")
PY
cat "$run_dir/summary.md"
