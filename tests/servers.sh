#!/usr/bin/env bash
# servers.sh: throwaway PostgreSQL and MariaDB servers for sqlfeed's tests.
#
#   tests/servers.sh start        start both servers in a new /tmp/sqlfeed-servers.XXXXXX
#   tests/servers.sh stop [DIR]   stop them and remove DIR (default $SQLFEED_SERVERS_DIR)
#   tests/servers.sh status [DIR] say what runs
#
# `start` prints shell assignments on stdout and nothing else, so a caller does
#   eval "$(tests/servers.sh start)"
# which sets (and exports) SQLFEED_SERVERS_DIR, SQLFEED_PG_URL, SQLFEED_MY_URL,
# SQLFEED_PG_ADMIN_URL, SQLFEED_MY_ADMIN_URL, SQLFEED_MY_SOCKET and SQLFEED_PG_SOCKET_DIR.
# Progress and errors go to stderr. Both servers listen on 127.0.0.1 only, each on a
# free TCP port, with fresh random passwords; they keep running after the script exits,
# until `stop`. A `start` that fails stops what it started and removes its directory.
#
# PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` system
# user (DIR then belongs to it, so it can put its socket there). MariaDB runs as root
# (--user=root) when root, else as the current user.
#
# Environment: SQLFEED_PG_BINDIR overrides the PostgreSQL bin directory (default: the
# newest /usr/lib/postgresql/*/bin, else `pg_config --bindir`).
set -euo pipefail

PROG=servers.sh
MARKER='sqlfeed-servers-state v1'
TIMEOUT=30 # seconds each server gets to come up (and to shut down)

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------- helpers

rand_pw() { # 24 random alphanumerics: no URL or shell quoting needed
  local s=''
  while [ "${#s}" -lt 24 ]; do
    s+=$(head -c 96 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')
  done
  printf '%s' "${s:0:24}"
}

free_port() { # a TCP port nobody listens on at 127.0.0.1 (the kernel's choice)
  local p
  if command -v python3 >/dev/null 2>&1 &&
    p=$(python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null) && [ -n "$p" ]; then
    printf '%s\n' "$p"
    return 0
  fi
  local _
  for _ in $(seq 200); do # no python3: a random port that refuses a connection
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      printf '%s\n' "$p"
      return 0
    fi
  done
  return 1
}

lines() { # lines FILE: how many lines FILE has (0 if missing)
  if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

new_lines_match() { # new_lines_match FILE N REGEX: does FILE past line N match REGEX?
  [ -f "$1" ] && tail -n "+$(($2 + 1))" "$1" | grep -Eq "$3"
}

show_tail() { # show_tail FILE...: the end of each existing log, on stderr
  local f
  for f in "$@"; do
    [ -s "$f" ] || continue
    printf '%s: ---- last lines of %s ----\n' "$PROG" "$f" >&2
    tail -n 25 "$f" | sed 's/^/    /' >&2
  done
}

show_head() { # show_head FILE: the start of a log, on stderr
  [ -s "$1" ] || return 0
  printf '%s: ---- first lines of %s ----\n' "$PROG" "$1" >&2
  head -n 12 "$1" | sed 's/^/    /' >&2
}

# pid_alive PID NEEDLE: is PID a live (non-zombie) process whose command line holds
# NEEDLE? This is how we make sure we only ever signal a server we started.
pid_alive() {
  local pid=$1 needle=$2 cmd
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ -n $cmd && $cmd == *"$needle"* ]]
}

# child_running PID: is our child PID there and not a zombie? (Unlike pid_alive, true
# too in the instant between fork and exec, when it does not show its command line yet.)
child_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ] && [ "${stat:0:1}" != X ]
}

# stop_pid NAME PID NEEDLE FIRSTSIG: signal, wait up to TIMEOUT s, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 needle=$3 sig=$4 i
  pid_alive "$pid" "$needle" || return 0
  log "stopping $name (pid $pid)"
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    pid_alive "$pid" "$needle" || return 0
    sleep 0.1
  done
  log "$name (pid $pid) did not stop in ${TIMEOUT}s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" "$needle" || return 0
    sleep 0.1
  done
  log "warning: $name (pid $pid) is still there"
  return 1
}

state_get() { # state_get DIR KEY
  sed -n "s/^$2=//p" "$1/state" | tail -n 1
}

# ---------------------------------------------------------------- binaries

find_pg_bindir() {
  local d cands=()
  if [ -n "${SQLFEED_PG_BINDIR:-}" ]; then
    printf '%s\n' "$SQLFEED_PG_BINDIR"
    return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && cands+=("$d")
  done
  if [ "${#cands[@]}" -gt 0 ]; then
    printf '%s\n' "${cands[@]}" | sort -V | tail -n 1
    return 0
  fi
  if command -v pg_config >/dev/null 2>&1; then
    pg_config --bindir
    return 0
  fi
  return 1
}

find_prog() { # find_prog NAME...: the first one found in PATH or the sbin dirs
  local n d
  for n in "$@"; do
    if command -v "$n" >/dev/null 2>&1; then
      command -v "$n"
      return 0
    fi
    for d in /usr/sbin /usr/local/sbin /usr/libexec; do
      [ -x "$d/$n" ] && {
        printf '%s\n' "$d/$n"
        return 0
      }
    done
  done
  return 1
}

# ---------------------------------------------------------------- PostgreSQL

as_pg() { # run as the user that owns the cluster
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_pg() { # in a subshell, cwd DIR; writes DIR/pg.port
  local data=$DIR/pg-data pwfile=$DIR/pg-pw port attempt before t0=$SECONDS
  mkdir -m 700 "$data"
  (umask 077 && printf '%s\n' "$PG_PW" >"$pwfile")
  is_root && chown postgres: "$data" "$pwfile"
  log "PostgreSQL: initdb"
  if ! as_pg "$PG_BINDIR/initdb" -D "$data" --encoding=UTF8 --locale=C \
    --username=sqlfeed --pwfile="$pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 \
    --no-sync --no-instructions >"$DIR/pg-initdb.log" 2>&1; then
    log "PostgreSQL: initdb failed"
    return 1
  fi
  rm -f "$pwfile"
  # Only loopback TCP and the socket in DIR, both with a password.
  cat >"$data/pg_hba.conf" <<EOF
# written by tests/servers.sh: password (scram-sha-256) everywhere, loopback only
local all all           scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
EOF
  cat >>"$data/postgresql.conf" <<EOF

# ---- tests/servers.sh: a throwaway server
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 20
max_wal_senders = 0
wal_level = minimal
EOF
  for attempt in 1 2 3 4 5; do
    port=$(free_port) || {
      log "PostgreSQL: found no free port"
      return 1
    }
    printf 'port = %s\n' "$port" >>"$data/postgresql.conf"
    before=$(lines "$DIR/pg.log")
    log "PostgreSQL: starting on 127.0.0.1:$port"
    if as_pg "$PG_BINDIR/pg_ctl" -D "$data" -l "$DIR/pg.log" -w -t "$TIMEOUT" -s start \
      >>"$DIR/pg-ctl.log" 2>&1; then
      break
    fi
    # pg_ctl may give up on a server that is still coming up: never leave it behind
    pid_alive "$(head -n 1 "$data/postmaster.pid" 2>/dev/null)" "$data" && return 1
    if [ "$attempt" -lt 5 ] && new_lines_match "$DIR/pg.log" "$before" 'already in use'; then
      log "PostgreSQL: port $port was taken meanwhile, trying another"
      continue
    fi
    log "PostgreSQL: the server did not start"
    return 1
  done
  printf '%s\n' "$port" >"$DIR/pg.port"
  if ! PGPASSWORD=$PG_PW PGCONNECT_TIMEOUT=10 "$PSQL" -X -q -v ON_ERROR_STOP=1 \
    "host=127.0.0.1 port=$port user=sqlfeed dbname=postgres sslmode=disable" \
    -c 'CREATE DATABASE sqlfeed OWNER sqlfeed' >>"$DIR/pg-ctl.log" 2>&1; then
    log "PostgreSQL: could not create database sqlfeed"
    return 1
  fi
  log "PostgreSQL: ready on 127.0.0.1:$port (pid $(head -n 1 "$data/postmaster.pid"), $((SECONDS - t0))s)"
}

stop_pg() { # stop_pg DIR: fast shutdown (SIGINT) of the postmaster we started
  local data=$1/pg-data pid
  [ -f "$data/postmaster.pid" ] || return 0
  pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || return 0
  stop_pid PostgreSQL "$pid" "$data" INT
}

# ---------------------------------------------------------------- MariaDB

my_opts() { # the options the install and the server share
  MY_OPTS=(--innodb-buffer-pool-size=32M --innodb-log-file-size=16M
    --innodb-flush-log-at-trx-commit=0
    --character-set-server=utf8mb4 --collation-server=utf8mb4_bin
    --tmpdir="$DIR/my-tmp") # a private tmpdir: temporary table names clash in a shared one
  if is_root; then MY_OPTS+=(--user=root); fi
}

my_root() { # the client as root over the socket (no password until we set it)
  "$MY_CLIENT" --no-defaults --protocol=socket --socket="$DIR/my.sock" -uroot \
    --connect-timeout=10 "$@"
}

start_my() { # in a subshell, cwd DIR; writes DIR/my.port
  local data=$DIR/my-data port attempt before pid i ok t0=$SECONDS users sql u
  my_opts
  mkdir -m 700 "$DIR/my-tmp"
  log "MariaDB: mariadb-install-db"
  if ! "$MY_INSTALL" --no-defaults --datadir="$data" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve "${MY_OPTS[@]}" >"$DIR/my-install.log" 2>&1; then
    log "MariaDB: mariadb-install-db failed"
    return 1
  fi
  for attempt in 1 2 3 4 5; do
    port=$(free_port) || {
      log "MariaDB: found no free port"
      return 1
    }
    before=$(lines "$DIR/my.err")
    log "MariaDB: starting on 127.0.0.1:$port"
    # setsid: its own session, no terminal, so it outlives us; every fd goes to files
    setsid "$MY_SERVER" --no-defaults --datadir="$data" --socket="$DIR/my.sock" \
      --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
      --pid-file="$DIR/my.pid" --log-error="$DIR/my.err" "${MY_OPTS[@]}" \
      --max-connections=50 --skip-log-bin --skip-external-locking \
      </dev/null >>"$DIR/my.out" 2>&1 &
    pid=$!
    printf 'my_pid=%s\n' "$pid" >>"$DIR/state"
    ok=0
    for ((i = 0; i < TIMEOUT * 10; i++)); do
      if ! child_running "$pid"; then break; fi
      if [ -S "$DIR/my.sock" ] && "$MY_ADMIN" --no-defaults --protocol=socket \
        --socket="$DIR/my.sock" -uroot --connect-timeout=2 ping >/dev/null 2>&1; then
        ok=1
        break
      fi
      sleep 0.1
    done
    [ "$ok" = 1 ] && break
    if child_running "$pid"; then
      log "MariaDB: no answer after ${TIMEOUT}s"
      return 1
    fi
    if [ "$attempt" -lt 5 ] && new_lines_match "$DIR/my.err" "$before" 'already in use|Bind on TCP/IP port'; then
      log "MariaDB: port $port was taken meanwhile, trying another"
      continue
    fi
    log "MariaDB: the server exited"
    return 1
  done
  printf '%s\n' "$port" >"$DIR/my.port"
  # Drop every account but root@localhost, root@127.0.0.1 and mariadb.sys (the install
  # adds root@HOSTNAME and root@::1), then set passwords and make ours.
  users=$(my_root -N -B -e "SELECT CONCAT(QUOTE(user), '@', QUOTE(host)) FROM mysql.global_priv
      WHERE NOT (user = 'root' AND host IN ('localhost', '127.0.0.1')) AND user <> 'mariadb.sys'") || {
    log "MariaDB: could not list the accounts"
    return 1
  }
  sql=''
  while IFS= read -r u; do
    if [ -n "$u" ]; then sql+="DROP USER $u;"$'\n'; fi
  done <<<"$users"
  sql+="
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE sqlfeed CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER 'sqlfeed'@'127.0.0.1' IDENTIFIED BY '$MY_PW';
CREATE USER 'sqlfeed'@'localhost' IDENTIFIED BY '$MY_PW';
GRANT ALL PRIVILEGES ON sqlfeed.* TO 'sqlfeed'@'127.0.0.1';
GRANT ALL PRIVILEGES ON sqlfeed.* TO 'sqlfeed'@'localhost';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$MY_ROOT_PW';
ALTER USER 'root'@'localhost' IDENTIFIED BY '$MY_ROOT_PW';
FLUSH PRIVILEGES;"
  if ! my_root <<<"$sql" >>"$DIR/my-setup.log" 2>&1; then
    log "MariaDB: could not create the database and users"
    return 1
  fi
  if ! MYSQL_PWD=$MY_PW "$MY_CLIENT" --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" \
    -u sqlfeed --connect-timeout=10 sqlfeed -e 'SELECT 1' >>"$DIR/my-setup.log" 2>&1; then
    log "MariaDB: user sqlfeed cannot log in over TCP"
    return 1
  fi
  log "MariaDB: ready on 127.0.0.1:$port (pid $(cat "$DIR/my.pid" 2>/dev/null || echo "$pid"), $((SECONDS - t0))s)"
}

stop_my() { # stop_my DIR: normal shutdown (SIGTERM) of the mariadbd we started
  local dir=$1 pid p
  local -a pids=()
  [ -f "$dir/my.pid" ] && pids+=("$(head -n 1 "$dir/my.pid" 2>/dev/null || true)")
  while IFS= read -r p; do pids+=("$p"); done < <(sed -n 's/^my_pid=//p' "$dir/state")
  for pid in "${pids[@]}"; do
    stop_pid MariaDB "$pid" "--datadir=$dir/my-data" TERM || true
  done
}

# ---------------------------------------------------------------- commands

# check_dir DIR: is DIR one of ours, made by this user (or are we root)? Prints its
# absolute path.
check_dir() {
  local dir=$1 abs owner
  abs=$(cd "$dir" && pwd -P) || die "cannot enter $dir"
  if [ ! -f "$abs/state" ] || [ "$(head -n 1 "$abs/state")" != "$MARKER" ]; then
    die "$abs was not made by tests/servers.sh start (no state file): not touching it"
  fi
  [ "$(state_get "$abs" dir)" = "$abs" ] || die "$abs/state names another directory: not touching it"
  owner=$(state_get "$abs" uid)
  if ! is_root && [ "$owner" != "$(id -u)" ]; then
    die "$abs was started by uid $owner: stop it as that user or as root"
  fi
  printf '%s\n' "$abs"
}

teardown() { # teardown DIR: stop both servers, then remove DIR
  local dir=$1 rc=0
  stop_pg "$dir" || rc=1
  stop_my "$dir" || rc=1
  if [ "$rc" -ne 0 ]; then
    log "error: a server in $dir did not stop; leaving $dir in place"
    return 1
  fi
  rm -rf -- "$dir"
}

cmd_stop() {
  local dir=${1:-${SQLFEED_SERVERS_DIR:-}}
  if [ -z "$dir" ]; then
    log "stop: no DIR given and SQLFEED_SERVERS_DIR is not set: nothing to stop"
    return 0
  fi
  if [ ! -e "$dir" ]; then
    log "stop: $dir is gone already: nothing to stop"
    return 0
  fi
  dir=$(check_dir "$dir")
  teardown "$dir"
  log "stopped; removed $dir"
}

cmd_status() {
  local dir=${1:-${SQLFEED_SERVERS_DIR:-}} pid port rc=0
  [ -n "$dir" ] || die "status: no DIR given and SQLFEED_SERVERS_DIR is not set"
  [ -e "$dir" ] || die "status: $dir does not exist"
  dir=$(check_dir "$dir")
  pid=$(head -n 1 "$dir/pg-data/postmaster.pid" 2>/dev/null || true)
  port=$(cat "$dir/pg.port" 2>/dev/null || true)
  if pid_alive "$pid" "$dir/pg-data"; then
    echo "PostgreSQL: running, pid $pid, 127.0.0.1:${port:-?}, socket dir $dir"
  else
    echo "PostgreSQL: not running"
    rc=1
  fi
  pid=$(head -n 1 "$dir/my.pid" 2>/dev/null || true)
  port=$(cat "$dir/my.port" 2>/dev/null || true)
  if pid_alive "$pid" "--datadir=$dir/my-data"; then
    echo "MariaDB: running, pid $pid, 127.0.0.1:${port:-?}, socket $dir/my.sock"
  else
    echo "MariaDB: not running"
    rc=1
  fi
  return "$rc"
}

DIR=
STARTED=0
PG_FAILED=0
MY_FAILED=0

on_start_exit() { # EXIT trap of `start`: undo everything unless it all worked
  local rc=$?
  [ "$STARTED" = 1 ] && return 0
  set +e
  [ "$rc" -eq 0 ] && rc=1
  wait 2>/dev/null # a server start still under way (a signal came) ends first
  if [ -n "$DIR" ] && [ -d "$DIR" ]; then
    if [ "$PG_FAILED" = 1 ] || [ "$MY_FAILED" = 0 ]; then
      if [ -s "$DIR/pg.log" ]; then
        show_tail "$DIR/pg-ctl.log" "$DIR/pg.log"
      else
        show_tail "$DIR/pg-initdb.log" "$DIR/pg-ctl.log"
      fi
    fi
    if [ "$MY_FAILED" = 1 ] || [ "$PG_FAILED" = 0 ]; then
      if [ -s "$DIR/my.err" ]; then
        show_tail "$DIR/my.err" "$DIR/my-setup.log"
      else
        show_head "$DIR/my-install.log" # its error comes first, then advice
        show_tail "$DIR/my.out"
      fi
    fi
    log "start failed: stopping what was started and removing $DIR"
    teardown "$DIR"
  fi
  exit "$rc"
}

cmd_start() {
  local pg_job my_job
  PG_BINDIR=$(find_pg_bindir) || die "PostgreSQL server binaries not found (install postgresql)"
  if [ ! -x "$PG_BINDIR/initdb" ] || [ ! -x "$PG_BINDIR/pg_ctl" ]; then
    die "no initdb/pg_ctl in $PG_BINDIR"
  fi
  PSQL=$PG_BINDIR/psql
  [ -x "$PSQL" ] || PSQL=$(command -v psql) || die "psql not found"
  MY_SERVER=$(find_prog mariadbd mysqld) || die "mariadbd not found (install mariadb-server)"
  MY_INSTALL=$(find_prog mariadb-install-db mysql_install_db) || die "mariadb-install-db not found"
  MY_CLIENT=$(find_prog mariadb mysql) || die "the mariadb client not found"
  MY_ADMIN=$(find_prog mariadb-admin mysqladmin) || die "mariadb-admin not found"
  command -v setsid >/dev/null 2>&1 || die "setsid not found (util-linux)"
  if is_root; then
    id postgres >/dev/null 2>&1 ||
      die "running as root needs the 'postgres' system user (PostgreSQL refuses to run as root)"
    command -v runuser >/dev/null 2>&1 || die "runuser not found (util-linux)"
  fi

  trap on_start_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP
  DIR=$(mktemp -d /tmp/sqlfeed-servers.XXXXXX) || die "mktemp failed"
  DIR=$(cd "$DIR" && pwd -P)
  chmod 755 "$DIR"
  printf '%s\ndir=%s\nuid=%s\n' "$MARKER" "$DIR" "$(id -u)" >"$DIR/state"
  # postgres (as root: the postgres user) puts its socket and lock file in DIR
  is_root && chown postgres "$DIR"
  cd "$DIR"
  log "starting PostgreSQL and MariaDB in $DIR"

  PG_PW=$(rand_pw)
  MY_PW=$(rand_pw)
  MY_ROOT_PW=$(rand_pw)
  local t0=$SECONDS
  # The two start in parallel; each logs to stderr and to files in DIR.
  start_pg >&2 &
  pg_job=$!
  start_my >&2 &
  my_job=$!
  wait "$pg_job" || PG_FAILED=1
  wait "$my_job" || MY_FAILED=1
  [ "$PG_FAILED" = 0 ] || die "PostgreSQL did not start"
  [ "$MY_FAILED" = 0 ] || die "MariaDB did not start"

  local pg_port my_port
  pg_port=$(cat "$DIR/pg.port")
  my_port=$(cat "$DIR/my.port")
  printf 'pg_port=%s\nmy_port=%s\n' "$pg_port" "$my_port" >>"$DIR/state"
  local out
  out="SQLFEED_SERVERS_DIR=$DIR
SQLFEED_PG_URL=postgresql://sqlfeed:$PG_PW@127.0.0.1:$pg_port/sqlfeed
SQLFEED_MY_URL=mysql://sqlfeed:$MY_PW@127.0.0.1:$my_port/sqlfeed
SQLFEED_PG_ADMIN_URL=postgresql://sqlfeed:$PG_PW@127.0.0.1:$pg_port/sqlfeed
SQLFEED_MY_ADMIN_URL=mysql://root:$MY_ROOT_PW@127.0.0.1:$my_port/sqlfeed
SQLFEED_MY_SOCKET=$DIR/my.sock
SQLFEED_PG_SOCKET_DIR=$DIR
export SQLFEED_SERVERS_DIR SQLFEED_PG_URL SQLFEED_MY_URL SQLFEED_PG_ADMIN_URL SQLFEED_MY_ADMIN_URL SQLFEED_MY_SOCKET SQLFEED_PG_SOCKET_DIR"
  (umask 077 && printf '%s\n' "$out" >"$DIR/env")
  STARTED=1
  log "both servers up in $((SECONDS - t0))s; stop them with: tests/servers.sh stop $DIR"
  printf '%s\n' "$out"
}

usage() {
  cat >&2 <<'EOF'
usage: tests/servers.sh start          start throwaway PostgreSQL and MariaDB servers;
                                       prints shell assignments: eval "$(tests/servers.sh start)"
       tests/servers.sh stop [DIR]     stop them and remove DIR (default $SQLFEED_SERVERS_DIR)
       tests/servers.sh status [DIR]   say what runs
EOF
  exit 2
}

case ${1:-} in
start)
  [ $# -eq 1 ] || usage
  cmd_start
  ;;
stop)
  [ $# -le 2 ] || usage
  cmd_stop "${2:-}"
  ;;
status)
  [ $# -le 2 ] || usage
  cmd_status "${2:-}"
  ;;
*) usage ;;
esac
