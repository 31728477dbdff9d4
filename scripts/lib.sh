# Shared by scripts/demo.sh, scripts/test.sh and .ci/run: installs what the
# project needs on Debian or Ubuntu, and starts a private MariaDB server.
# Sourced, not run.

set -euo pipefail

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

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

# start_mariadb DIR: starts a private server with its data in DIR (created
# on first use) and prints its mysql:// URL. Reuses one already running there.
start_mariadb() {
  local dir=$1 port
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
    --log-error="$dir/error.log" --skip-log-bin --skip-name-resolve --local-infile=1 \
    --character-set-server=utf8mb4 --innodb-buffer-pool-size=256M >/dev/null 2>&1 &
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
