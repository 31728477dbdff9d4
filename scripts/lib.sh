# Shared by scripts/demo.sh, scripts/test.sh and .ci/run: installs what the
# project needs on Debian or Ubuntu, and starts a private MariaDB server.
# Sourced, not run.

set -euo pipefail

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Quiets a server before a measured run (the benches): flushes its dirty
# pages, then drops the OS page cache. $1: the client command, as a word
# list ("mariadb --protocol=tcp -h127.0.0.1 -P<port> -uroot").
quiesce_server() {
  local client=$1 d
  $client -e 'SET GLOBAL innodb_max_dirty_pages_pct = 0'
  for _ in $(seq 1 120); do
    d=$($client -N -e "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'" | awk '{print $2}')
    [ "${d:-0}" -lt 20 ] && break
    sleep 0.5
  done
  $client -e 'SET GLOBAL innodb_max_dirty_pages_pct = 90'
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  say "installing $*"
  if [ -z "${APT_UPDATED:-}" ]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The Rust toolchain, a C linker, and the MariaDB server binaries (the
# project starts its own server; it never uses the system one).
ensure_deps() {
  local missing=()
  command -v cc >/dev/null || missing+=(gcc libc6-dev)
  command -v curl >/dev/null || missing+=(curl ca-certificates)
  command -v zstd >/dev/null || missing+=(zstd)
  command -v jq >/dev/null || missing+=(jq)
  command -v age >/dev/null || missing+=(age)
  command -v script >/dev/null || missing+=(bsdutils)
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
  command -v mariadb >/dev/null || missing+=(mariadb-client)
  # The storage tests' servers and tools: sshd and ssh-keygen, vsftpd,
  # openssl, python3.
  command -v ssh-keygen >/dev/null || missing+=(openssh-client)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  [ -x /usr/sbin/vsftpd ] || missing+=(vsftpd)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v python3 >/dev/null || missing+=(python3)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  if ! command -v cargo >/dev/null; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  fi
  if ! command -v cargo >/dev/null; then
    say "installing the Rust toolchain (rustup, stable)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
    . "$HOME/.cargo/env"
  fi
}

# The storage servers the tests start (moto for S3, pyftpdlib for FTP; sshd
# and vsftpd come from Debian)
# in a venv of the project's: target/test-servers/venv.
ensure_test_servers() {
  local venv=target/test-servers/venv
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import moto, pyftpdlib, boto3, flask' 2>/dev/null; then
    return
  fi
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
  fi
  say "installing the test storage servers (moto, pyftpdlib) into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]' pyftpdlib boto3
}

mariadbd_bin() { command -v mariadbd || echo /usr/sbin/mariadbd; }

# start_mariadb DIR [ARGS...]: starts a private server with its data in DIR
# (created on first use), with server ARGS after its own (--log-bin among
# them turns the binary log on; it is off otherwise), and prints its
# mysql:// URL. Reuses one already running there.
start_mariadb() {
  local dir=$1 port skip=--skip-log-bin
  shift
  case " $* " in *" --log-bin"*) skip= ;; esac
  mkdir -p "$dir"
  if [ -f "$dir/port" ] && [ -f "$dir/mariadbd.pid" ] && kill -0 "$(cat "$dir/mariadbd.pid")" 2>/dev/null; then
    echo "mysql://root@127.0.0.1:$(cat "$dir/port")"
    return
  fi
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
      || { cat "$dir/install.log" >&2; return 1; }
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 33061)
  echo "$port" >"$dir/port"
  "$(mariadbd_bin)" --no-defaults --datadir="$dir/data" --socket="$dir/mysql.sock" \
    --port="$port" --bind-address=127.0.0.1 --user="$(id -un)" --pid-file="$dir/mariadbd.pid" \
    --log-error="$dir/error.log" $skip --skip-name-resolve --local-infile=1 \
    --character-set-server=utf8mb4 --innodb-buffer-pool-size=256M "$@" >/dev/null 2>&1 &
  for _ in $(seq 1 120); do
    if mariadb --protocol=tcp -h127.0.0.1 -P"$port" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
      echo "mysql://root@127.0.0.1:$port"
      return
    fi
    sleep 0.5
  done
  cat "$dir/error.log" >&2
  return 1
}

# stop_mariadb DIR
stop_mariadb() {
  local dir=$1
  if [ -f "$dir/mariadbd.pid" ]; then
    kill "$(cat "$dir/mariadbd.pid")" 2>/dev/null || true
    for _ in $(seq 1 60); do
      kill -0 "$(cat "$dir/mariadbd.pid" 2>/dev/null)" 2>/dev/null || break
      sleep 0.5
    done
  fi
}

# Seeds the benches' database `bench` with a shape, unless the marker file
# says it holds that shape already. Arguments: shape (seed, wide, binary),
# clients (seed), scale (wide, binary), the client command, the server's
# port, the billmgr-ops binary, the database's URL, the marker file, the
# log. MySQL loads local files only when asked to: the seed asks, then
# puts the server's setting back.
seed_bench() {
  local shape=$1 clients=$2 scale=$3 client=$4 port=$5 bin=$6 url=$7 marker=$8 log=$9 infile
  local want="$shape $clients $scale"
  if [ "$(cat "$marker" 2>/dev/null)" = "$want" ] &&
    [ "$($client -N -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench'")" != 0 ]; then
    return 0
  fi
  rm -f "$marker"
  $client -e 'DROP DATABASE IF EXISTS bench; CREATE DATABASE bench CHARACTER SET utf8mb4'
  say "seeding the $shape shape"
  if [ "$shape" = seed ]; then
    BILLMGR_OPS_DB=$url "$bin" dev seed --clients "$clients" --seed 1 2>"$log" ||
      { tail -5 "$log" >&2; return 1; }
  else
    infile=$($client -N -e 'SELECT @@GLOBAL.local_infile')
    $client -e 'SET GLOBAL local_infile = 1'
    python3 bench/gen-wide.py --port "$port" --database bench --scale "$scale" --shape "$shape" 2>"$log" ||
      { tail -5 "$log" >&2; return 1; }
    $client -e "SET GLOBAL local_infile = $infile"
  fi
  $client -N -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench' AND TABLE_TYPE='BASE TABLE'" |
    while read -r t; do $client -e "ANALYZE TABLE bench.\`$t\`" >/dev/null; done
  echo "$want" >"$marker"
}
