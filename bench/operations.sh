#!/usr/bin/env bash
# Benchmark: draining a backlog of running operations at the modules' pace.
# `billmgr-ops cron` is run once a minute, as /etc/cron.d does; the time
# from the first tick until no operation is left is compared with the
# ideal, operations x module seconds / Concurrency.
#
#   bench/operations.sh        backlogs of 100 and 1000 with Concurrency 4,
#                              10000 with Concurrency 16, a 2 s module
#   BACKLOGS="100:4 10000:4" bench/operations.sh    (operations:Concurrency)
#   BACKLOGS= bench/operations.sh     no backlog case, only what follows
#
# Then a mix (fast, slow, failing and hanging modules at once), and the
# tick's own cost and the list call with 50,000 operations. Results:
# bench/runs/<date>-<host>-operations/results.tsv (or RUN_DIR), appended
# to when it exists, and summary.md. Not a test: nothing here asserts a
# time.
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_deps
[ -x /usr/bin/time ] || apt_install time

backlogs=${BACKLOGS-100:4 1000:4 10000:16}
concurrency=4
cargo build --release --quiet --features dev
bin=$PWD/target/release/billmgr-ops
work=$PWD/target/bench-operations
run_dir=${RUN_DIR:-$PWD/bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)-operations}
rm -rf "$work/mgr"
mkdir -p "$work/mgr/etc" "$work/mgr/var" "$work/mgr/processing" "$run_dir"

base=$(start_mariadb "$work/mariadb")
trap 'stop_mariadb "$work/mariadb"' EXIT
port=${base##*:}
M="mariadb --protocol=tcp -h127.0.0.1 -P$port -uroot"
export MGR_DIR=$work/mgr BILLMGR_OPS_DB=$base/ops
$M -e 'DROP DATABASE IF EXISTS ops; CREATE DATABASE ops CHARACTER SET utf8mb4'
"$bin" dev seed --clients 200 --seed 1 2>/dev/null
"$bin" migrate >/dev/null 2>&1 || true

# The fixture modules: succeed after N seconds, fail, or hang.
module() { # name body
  printf '#!/bin/sh\n%s\n' "$2" >"$work/mgr/processing/$1"
  chmod +x "$work/mgr/processing/$1"
  $M ops -e "INSERT INTO processingmodule (name, module) VALUES ('bench $1', '$1')"
}
module pm2s "sleep 2; echo '<doc><ok/></doc>'"
module pmfast "sleep 0.2; echo '<doc><ok/></doc>'"
module pmslow "sleep 5; echo '<doc><ok/></doc>'"
module pmfail "sleep 0.2; echo '<doc><error type=\"bench\"/></doc>'; exit 1"
module pmhang "sleep 600"
conf() { # Concurrency
  printf 'Concurrency %s\nRetryDelay 3600\nOperationTimeout 20\nRunModules on\n' "$1" >"$work/mgr/etc/billmgr-ops.conf"
}

# add N MODULE [COMMAND]: N due operations on services of the seed.
add() {
  $M ops -e "
    INSERT INTO runningoperation (item, intname, processingmodule, trycount, manual, cdate)
    SELECT i.id, '${3:-open}', (SELECT id FROM processingmodule WHERE module = '$2'), 0, 'off', NOW()
    FROM item i CROSS JOIN (SELECT seq FROM seq_1_to_100) s LIMIT $1"
}
clear_ops() { $M ops -e 'DELETE FROM runningoperation; DELETE FROM billmgrops_operation; DELETE FROM billmgrops_attempt'; }
left() { $M -N ops -e "SELECT COUNT(*) FROM runningoperation r LEFT JOIN billmgrops_operation s ON s.runningoperation = r.id WHERE r.manual = 'off' AND (COALESCE(s.status, 'wait') IN ('wait', 'run') OR (s.status = 'error' AND s.next_try <= NOW()))"; }

# drain: runs cron every 60 s until nothing is left; prints seconds.
drain() {
  local start now
  start=$(date +%s.%N)
  while :; do
    tick=$(date +%s)
    "$bin" cron >>"$work/cron.log" 2>&1 &
    while [ $(( $(date +%s) - tick )) -lt 60 ]; do
      sleep 0.5
      if [ "$(left)" = 0 ]; then
        now=$(date +%s.%N); wait
        python3 -c "print(round($now - $start, 1))"
        return
      fi
    done
    wait
  done
}

results=$run_dir/results.tsv
[ -s "$results" ] || printf 'case\toperations\tseconds\tideal\tratio\n' >"$results"
for case in $backlogs; do
  n=${case%%:*} c=${case##*:}
  conf "$c"
  clear_ops
  add "$n" pm2s
  say "backlog of $n operations of 2 s, Concurrency $c"
  secs=$(drain)
  ideal=$(python3 -c "print($n * 2 / $c)")
  ratio=$(python3 -c "print(round($secs / $ideal, 2))")
  printf 'backlog-2s-c%s\t%s\t%s\t%s\t%s\n' "$c" "$n" "$secs" "$ideal" "$ratio" >>"$results"
  say "  drained in $secs s (ideal $ideal s, x $ratio)"
done

# The mix: hanging operations first (oldest), then slow, failing, fast.
# Drained when every operation has had its attempt: the succeeding ones
# are gone, the failing and the hanging (killed at OperationTimeout) wait
# for a retry an hour away. The ideal counts every slot-second the mix
# needs, the hanging ones' 20 s each included.
conf "$concurrency"
clear_ops
add 8 pmhang; add 40 pmslow; add 40 pmfail; add 200 pmfast
say "mix: 8 hanging (timeout 20 s), 40 of 5 s, 40 failing, 200 of 0.2 s, Concurrency $concurrency"
secs=$(drain)
ideal=$(python3 -c "print((8 * 20 + 40 * 5 + 40 * 0.2 + 200 * 0.2) / $concurrency)")
printf 'mix-c%s\t288\t%s\t%s\t%s\n' "$concurrency" "$secs" "$ideal" "$(python3 -c "print(round($secs / $ideal, 2))")" >>"$results"
say "  drained in $secs s (ideal $ideal s)"
"$bin" call runningoperation.stop elid="$($M -N ops -e "SELECT GROUP_CONCAT(id SEPARATOR ', ') FROM runningoperation")" >/dev/null 2>&1 || true

# The tick's own cost with 50,000 operations (none due: all in back-off),
# and the list call against the mariadb client running the same query.
clear_ops
add 50000 pm2s sync_item
$M ops -e "INSERT INTO billmgrops_operation (runningoperation, status, next_try) SELECT id, 'error', NOW() + INTERVAL 1 DAY FROM runningoperation"
printf 'SchedulerStay 0\n' >>"$work/mgr/etc/billmgr-ops.conf"
"$bin" cron >/dev/null 2>&1
/usr/bin/time -f '%e' -o "$work/t" "$bin" cron >/dev/null 2>&1
tick=$(cat "$work/t")
printf 'tick-50000\t50000\t%s\t\t\n' "$tick" >>"$results"
say "tick with 50,000 operations, none due: $tick s"
# The list as the panel calls it (every row, up to 10,000, the panel
# pages), against the mariadb client running the same two statements.
panel_list() {
  printf '<?xml version="1.0" encoding="UTF-8"?>\n<doc func="runningoperation" lang="en"><tparams><func>runningoperation</func><out>xml</out></tparams></doc>' |
    env PARAM_func=runningoperation PARAM_out=xml AUTH_USER=admin AUTH_LEVEL=29 "$bin" >/dev/null
}
client_list() {
  $M -B ops -e "SELECT COUNT(*) FROM runningoperation;
    SELECT ro.id, ro.intname, ro.item, i.name, it.intname, a.name, ro.cdate, ro.trycount, pm.name, ro.task,
           COALESCE(s.status, 'wait') AS status, ro.manual
    FROM runningoperation ro
    LEFT JOIN item i ON i.id = ro.item
    LEFT JOIN pricelist p ON p.id = i.pricelist
    LEFT JOIN itemtype it ON it.id = p.itemtype
    LEFT JOIN account a ON a.id = i.account
    LEFT JOIN processingmodule pm ON pm.id = COALESCE(ro.processingmodule, i.processingmodule)
    LEFT JOIN billmgrops_operation s ON s.runningoperation = ro.id
    ORDER BY ro.id ASC, ro.id ASC LIMIT 10000 OFFSET 0" >/dev/null
}
median5() { # function: the median of five wall times, in seconds
  for _ in 1 2 3 4 5; do
    s=$(date +%s%N); "$1"; e=$(date +%s%N)
    echo $(( (e - s) / 1000000 ))
  done | sort -n | sed -n 3p | python3 -c "import sys; print(int(sys.stdin.read()) / 1000)"
}
panel_list; client_list
list=$(median5 panel_list)
client=$(median5 client_list)
ratio=$(python3 -c "print(round($list / $client, 2))")
printf 'list-50000\t50000\t%s\t%s\t%s\n' "$list" "$client" "$ratio" >>"$results"
say "list with 50,000 operations, as the panel calls it: $list s; mariadb client, same query: $client s (x $ratio)"

# And a tick that finds all 50,000 due and starts Concurrency of them.
$M ops -e "UPDATE billmgrops_operation SET next_try = NOW() - INTERVAL 1 MINUTE"
/usr/bin/time -f '%e' -o "$work/t" "$bin" cron >/dev/null 2>&1
tick=$(cat "$work/t")
printf 'tick-50000-due\t50000\t%s\t\t\n' "$tick" >>"$results"
say "tick with 50,000 operations, all due: $tick s"
"$bin" call runningoperation.stop elid="$($M -N ops -e "SELECT GROUP_CONCAT(runningoperation SEPARATOR ', ') FROM billmgrops_operation WHERE status = 'run'")" >/dev/null 2>&1 || true

{
  echo "The cron tick every 60 s as /etc/cron.d runs it; \`SchedulerStay\` 55 (default). For list-50000 the ideal column is the mariadb client's time for the same query."
  echo
  echo "| case | operations | seconds | ideal | x ideal |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  tail -n +2 "$results" | while IFS=$'\t' read -r c n s i r; do echo "| $c | $n | $s | $i | $r |"; done
} >"$run_dir/summary.md"
cat "$run_dir/summary.md"
