#!/usr/bin/env bash
# Benchmark: a full restore on MySQL, where `local_infile` is off (MySQL's
# default, so billmgr-ops loads by multi-row INSERTs), against MySQL's own
# client restoring a mysqldump of the same data, on the private MySQL of
# scripts/dbserver.sh, in the same run.
#
#   bench/restore-mysql.sh [CLIENTS]      default 90000 clients (about 1 GB)
#   RUNS=3 bench/restore-mysql.sh
#   SHAPE=wide bench/restore-mysql.sh     or binary: bench/gen-wide.py's
#
# The data is seeded in the server's database `bench` unless it holds the
# shape already (bench/copy.sh's `SERVER=mysql` runs seed the same).
# mysqldump and mysql are MySQL's own (mysql-client in the chroot). Every
# restore is checked with CHECKSUM TABLE against the source. Results:
# bench/runs/<date>-<host>-restore-mysql-<shape>/. Not a test.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
[ -x /usr/bin/time ] || apt_install time

clients=${1:-90000}
runs=${RUNS:-1}
shape=${SHAPE:-seed}
cargo build --release --quiet --features dev
bin=$PWD/target/release/billmgr-ops
work=$PWD/target/bench-restore-mysql
root=/var/lib/billmgr-ops-test/mysql-root
run_dir=${RUN_DIR:-$PWD/bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)-restore-mysql-$shape}
[ -z "${RUN_DIR:-}" ] && [ -e "$run_dir" ] && run_dir=$run_dir-$(date -u +%H%M)
rm -rf "$work/mgr"
mkdir -p "$work/mgr/etc" "$work/mgr/var" "$run_dir"

base=$(DBSERVER_ARGS="--innodb-flush-log-at-trx-commit=2 --sync-binlog=0" bash scripts/dbserver.sh mysql)
trap 'bash scripts/dbserver.sh mysql stop' EXIT
port=${base##*:}
[ -x "$root/usr/bin/mysqldump" ] ||
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false \
    install -y -qq --no-install-recommends mysql-client >/dev/null
M="mariadb --protocol=tcp -h127.0.0.1 -P$port -uroot"
C="--protocol=tcp -h127.0.0.1 -P$port -uroot"
export MGR_DIR=$work/mgr BILLMGR_OPS_DB=$base/bench
printf 'BackupThreads 2\n' >"$work/mgr/etc/billmgr-ops.conf"
seed_bench "$shape" "$clients" "${SCALE:-1}" "$M" "$port" "$bin" "$base/bench" \
  "$root/srv/billmgr-ops-test/bench.seeded" "$work/seed.log" || exit 1
$M -e 'DELETE FROM bench.billmgrops_backup' 2>/dev/null || true
size=$($M -N -e "SELECT ROUND(SUM(DATA_LENGTH + INDEX_LENGTH) / 1048576, 1) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' AND TABLE_NAME NOT LIKE 'billmgrops%'")
tables=$($M -N -e "SELECT GROUP_CONCAT(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' AND TABLE_TYPE='BASE TABLE' AND TABLE_NAME NOT LIKE 'billmgrops%'")
sums() { $M -N -e "CHECKSUM TABLE $(echo "$tables" | sed "s/\([^,]*\)/$1.\1/g")" | awk '{print $2}' | md5sum; }
want=$(sums bench)

say "a copy, and a mysqldump, of $size MiB"
"$bin" backup create 2>"$work/create.log"
copy=$(ls "$work"/mgr/var/billmgr-ops/backup/*.json | head -1 | xargs basename | sed 's/\.json$//')
# shellcheck disable=SC2086
chroot "$root" mysqldump $C --single-transaction --quick --routines --events --triggers \
  --set-gtid-purged=OFF bench | zstd -3 -T0 -q >"$work/dump.sql.zst"

printf 'method\trun\tseconds\tverified\n' >"$run_dir/results.tsv"
for run in $(seq 1 "$runs"); do
  /usr/bin/time -f '%e' -o "$work/time" "$bin" backup restore "$copy" 2>"$work/restore.log" ||
    { cat "$work/restore.log" >&2; exit 1; }
  v=failed; [ "$(sums bench)" = "$want" ] && v=ok
  printf 'billmgr-ops\t%s\t%s\t%s\n' "$run" "$(cat "$work/time")" "$v" >>"$run_dir/results.tsv"
  $M -e 'DROP DATABASE IF EXISTS r_mysql; CREATE DATABASE r_mysql CHARACTER SET utf8mb4'
  # shellcheck disable=SC2086
  /usr/bin/time -f '%e' -o "$work/time" sh -c "zstd -dc '$work/dump.sql.zst' | chroot '$root' mysql $C r_mysql"
  v=failed; [ "$(sums r_mysql)" = "$want" ] && v=ok
  printf 'mysql\t%s\t%s\t%s\n' "$run" "$(cat "$work/time")" "$v" >>"$run_dir/results.tsv"
  $M -e 'DROP DATABASE IF EXISTS r_mysql'
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
b=$(awk -F'\t' '$1=="billmgr-ops" {print $3}' "$run_dir/results.tsv" | median)
m=$(awk -F'\t' '$1=="mysql" {print $3}' "$run_dir/results.tsv" | median)
{
  echo "Database: $size MiB, shape $shape ($clients clients for dev seed), private MySQL $($M -N -e 'SELECT VERSION()') (local_infile $($M -N -e 'SELECT @@local_infile')); median of $runs run(s)."
  echo
  echo "| restore | seconds | x mysql | verified |"
  echo "| --- | ---: | ---: | --- |"
  echo "| billmgr-ops (INSERT loader) | $b | $(awk -v a="$b" -v r="$m" 'BEGIN {printf "%.2f", a / r}') | $(awk -F'\t' '$1=="billmgr-ops" {print $4}' "$run_dir/results.tsv" | sort -u | tr '\n' ' ')|"
  echo "| mysql < mysqldump | $m | 1.00 | $(awk -F'\t' '$1=="mysql" {print $4}' "$run_dir/results.tsv" | sort -u | tr '\n' ' ')|"
} >"$run_dir/summary.md"
cat "$run_dir/summary.md"
