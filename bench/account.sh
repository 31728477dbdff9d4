#!/usr/bin/env bash
# Benchmark: a copy and a full restore as root against the same as the
# panel's own account (`ALL` on the billing database only: no RELOAD, no
# other database), on the same private MariaDB, alternating, in the same
# run.
#
#   bench/account.sh [CLIENTS]      default 90000 clients (about 1 GB)
#   RUNS=5 THREADS=2 bench/account.sh
#   SERVER=mysql bench/account.sh   on the private MySQL of scripts/dbserver.sh
#
# Results: bench/runs/<date>-<host>-account/results.tsv and summary.md.
# Every copy is verified (`backup verify`), every restore checked with
# CHECKSUM TABLE against the data before it. Not a test: nothing here
# asserts a time.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
[ -x /usr/bin/time ] || apt_install time

clients=${1:-90000}
runs=${RUNS:-3}
threads=${THREADS:-2}
cargo build --release --quiet --features dev
bin=$PWD/target/release/billmgr-ops
server=${SERVER:-mariadb}
work=$PWD/target/bench-account-$server
run_dir=${RUN_DIR:-$PWD/bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)-account-$server}
[ -z "${RUN_DIR:-}" ] && [ -e "$run_dir" ] && run_dir=$run_dir-$(date -u +%H%M)
rm -rf "$work/mgr"
mkdir -p "$work/mgr/etc" "$work/mgr/var" "$run_dir"

if [ "$server" != mariadb ]; then
  say "private $server (scripts/dbserver.sh)"
  # The seed loads faster without a durable log; both accounts copy
  # from the same server either way.
  base=$(DBSERVER_ARGS="--innodb-flush-log-at-trx-commit=2 --sync-binlog=0" bash scripts/dbserver.sh "$server")
  trap 'bash scripts/dbserver.sh "$server" stop' EXIT
else
  say "private MariaDB in $work/mariadb"
  base=$(start_mariadb "$work/mariadb")
  trap 'stop_mariadb "$work/mariadb"' EXIT
fi
port=${base##*:}
M="mariadb --protocol=tcp -h127.0.0.1 -P$port -uroot"
export MGR_DIR=$work/mgr
printf 'BackupThreads %s\n' "$threads" >"$work/mgr/etc/billmgr-ops.conf"
if [ "$($M -N -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' AND TABLE_NAME NOT LIKE 'billmgrops%'")" = 0 ] ||
  [ "$(cat "$work/clients" 2>/dev/null)" != "$clients" ]; then
  $M -e 'DROP DATABASE IF EXISTS bench; CREATE DATABASE bench CHARACTER SET utf8mb4'
  say "seeding $clients clients"
  BILLMGR_OPS_DB=$base/bench "$bin" dev seed --clients "$clients" --seed 1 2>"$work/seed.log"
  echo "$clients" >"$work/clients"
fi
$M -e "DROP USER IF EXISTS 'billmgr'@'127.0.0.1'; CREATE USER 'billmgr'@'127.0.0.1' IDENTIFIED BY 'b1llmgr';
       GRANT ALL ON bench.* TO 'billmgr'@'127.0.0.1'"
size=$($M -N -e "SELECT ROUND(SUM(DATA_LENGTH + INDEX_LENGTH) / 1048576, 1) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' AND TABLE_NAME NOT LIKE 'billmgrops%'")
sums() {
  $M -N bench -e "SELECT GROUP_CONCAT(CONCAT('\`', TABLE_NAME, '\`') ORDER BY TABLE_NAME) FROM information_schema.TABLES
                  WHERE TABLE_SCHEMA='bench' AND TABLE_TYPE='BASE TABLE' AND TABLE_NAME NOT LIKE 'billmgrops%'" |
    xargs -I{} $M -N bench -e "CHECKSUM TABLE {}"
}
before=$(sums)
root_url=$base/bench
account_url="mysql://billmgr:b1llmgr@127.0.0.1:$port/bench"

printf 'who\trun\tseconds\tpeak_rss_kib\tconsistency\tverified\trestore_seconds\trestore_peak_rss_kib\trestored\n' >"$run_dir/results.tsv"
for run in $(seq 1 "$runs"); do
  for who in root account; do
    url=$root_url
    [ "$who" = account ] && url=$account_url
    rm -rf "$work/mgr/var/billmgr-ops"
    sync
    BILLMGR_OPS_DB=$url /usr/bin/time -f '%e %M' -o "$work/time" "$bin" backup create 2>"$work/create.log" ||
      { cat "$work/create.log" >&2; exit 1; }
    read -r secs rss <"$work/time"
    listing=$(ls "$work"/mgr/var/billmgr-ops/backup/*.json | head -1)
    consistency=$(jq -r .consistency "$listing")
    name=$(basename "$listing" .json)
    verified=failed
    BILLMGR_OPS_DB=$root_url "$bin" backup verify "$name" 2>/dev/null && verified=ok
    sync
    BILLMGR_OPS_DB=$url /usr/bin/time -f '%e %M' -o "$work/time" "$bin" backup restore "$name" 2>"$work/restore.log" ||
      { cat "$work/restore.log" >&2; exit 1; }
    read -r rsecs rrss <"$work/time"
    restored=failed
    [ "$(sums)" = "$before" ] && restored=ok
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$who" "$run" "$secs" "$rss" "$consistency" "$verified" \
      "$rsecs" "$rrss" "$restored" >>"$run_dir/results.tsv"
    say "$who run $run: copy $secs s ($consistency, $verified), restore $rsecs s ($restored)"
  done
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
r=$(awk -F'\t' '$1=="root" {print $3}' "$run_dir/results.tsv" | median)
a=$(awk -F'\t' '$1=="account" {print $3}' "$run_dir/results.tsv" | median)
c=$(awk -F'\t' '$1=="account" {print $5}' "$run_dir/results.tsv" | sort -u | tr '\n' ' ')
rr=$(awk -F'\t' '$1=="root" {print $7}' "$run_dir/results.tsv" | median)
ra=$(awk -F'\t' '$1=="account" {print $7}' "$run_dir/results.tsv" | median)
{
  echo "Database: $size MiB, $clients clients by dev seed, private $server ($($M -N -e 'SELECT VERSION()')); $threads threads; median of $runs alternating runs."
  echo
  echo "| account | copy, s | x root | consistency | restore, s | x root |"
  echo "| --- | ---: | ---: | --- | ---: | ---: |"
  echo "| root | $r | 1.00 | $(awk -F'\t' '$1=="root" {print $5}' "$run_dir/results.tsv" | sort -u | tr '\n' ' ')| $rr | 1.00 |"
  echo "| billmgr (ALL on bench only) | $a | $(awk -v a="$a" -v r="$r" 'BEGIN {printf "%.2f", a / r}') | $c| $ra | $(awk -v a="$ra" -v r="$rr" 'BEGIN {printf "%.2f", a / r}') |"
} >"$run_dir/summary.md"
cat "$run_dir/summary.md"
